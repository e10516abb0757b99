//! `wagate rate` end to end: the real binary on the committed example and on bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/rate")
}

#[test]
fn rates_the_example_file_with_a_summary() {
    let dir = examples();
    let output = Command::new(env!("CARGO_BIN_EXE_wagate"))
        .arg("rate")
        .arg(dir.join("events.jsonl"))
        .arg("--wabas")
        .arg(dir.join("wabas.csv"))
        .arg("--auth-intl")
        .arg(dir.join("auth-intl.csv"))
        .arg("--summary")
        .output()
        .expect("wagate runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 11, "{stdout}");
    assert!(lines[0].contains(r#""rate":"0.0118""#), "{}", lines[0]);
    assert!(
        lines[4].contains("outside_customer_service_window"),
        "{}",
        lines[4]
    );
    assert!(
        lines[9].contains(r#""market":"Qatar","rate":"0.0341""#),
        "{}",
        lines[9]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TOTAL") && stderr.contains("0.1501"),
        "{stderr}"
    );
}

#[test]
fn malformed_lines_on_standard_input_are_reported_and_exit_1() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wagate"))
        .arg("rate")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wagate runs");
    let input = concat!(
        "{\"ts\":\"2026-03-02T00:00:00Z\",\"id\":\"a\",\"waba\":\"w\",\"business\":\"+15550001111\",\"user\":\"+447700900123\",\"dir\":\"out\",\"type\":\"template\",\"category\":\"marketing\"}\n",
        "this is not json\n",
    );
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("finishes");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2:"), "{stderr}");
}

#[test]
fn a_bad_data_file_exits_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_wagate"))
        .arg("rate")
        .arg(examples().join("events.jsonl"))
        .arg("--wabas")
        .arg(examples().join("no-such-file.csv"))
        .output()
        .expect("wagate runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty());
}
