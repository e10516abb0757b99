//! `wagate rate`: the only part of the crate that reads files and writes to standard streams.
//!
//! Exit status: 0 when every line was rated; 1 when some input lines were malformed (each
//! is reported on standard error with its line number and skipped); 2 for usage and data-file
//! errors (unreadable file, bad CSV, unknown time zone) and failed output. Refused messages
//! (`outside_customer_service_window`) and `no_rate_card` are results, not errors.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::Date;

use crate::auth_intl::AuthIntl;
use crate::data::PricingData;
use crate::engine::Engine;
use crate::error::DataError;
use crate::event::{Event, EventKind};
use crate::instant::Instant;
use crate::jsonl::{self, OutputWriter};
use crate::summary::Summary;
use crate::waba::WabaDirectory;

/// Arguments of `wagate rate`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RateArgs {
    /// Input JSON Lines file, one event per line in time order (standard input when absent
    /// or `-`).
    pub input: Option<PathBuf>,
    /// WABA settings: CSV `waba,time_zone,currency,portfolio` (defaults: UTC, USD, own
    /// portfolio).
    #[arg(long, value_name = "FILE")]
    pub wabas: Option<PathBuf>,
    /// Extra rate card: Meta's `Pricing.csv` or wagate's rate-card CSV; prefix
    /// `YYYY-MM-DD=` to give or override its effective date. Repeatable.
    #[arg(long = "rate-card", value_name = "[DATE=]FILE")]
    pub rate_card: Vec<String>,
    /// Volume tier table in Meta's `Tier Pricing.csv` layout; prefix `YYYY-MM-DD=` to give or
    /// override its effective date. Repeatable.
    #[arg(long = "tiers", value_name = "[DATE=]FILE")]
    pub tiers: Vec<String>,
    /// Authentication-international eligibility: CSV
    /// `waba,primary_country,country,start_time` (`country` `*` for all).
    #[arg(long = "auth-intl", value_name = "FILE")]
    pub auth_intl: Option<PathBuf>,
    /// Print totals per market, category and type on standard error.
    #[arg(long)]
    pub summary: bool,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunOutcome {
    /// Input lines read (including blank and malformed ones).
    pub lines: u64,
    /// Business messages priced or refused (one output line each).
    pub outputs: u64,
    /// Lines reported and skipped.
    pub malformed: u64,
    /// The totals (also printed with `--summary`).
    pub summary: Summary,
}

impl RunOutcome {
    /// 0 when nothing was skipped, 1 when some lines were malformed.
    pub fn exit_code(&self) -> ExitCode {
        if self.malformed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}

/// Errors that stop a run (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A data file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A data file is not valid.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The input stream failed.
    #[error("reading input: {0}")]
    Input(io::Error),
    /// Standard output failed.
    #[error("writing output: {0}")]
    Output(io::Error),
}

/// Runs `wagate rate` on the real standard streams and files; returns the exit status.
pub fn run(args: RateArgs) -> ExitCode {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let input_path = args.input.as_ref().filter(|p| p.as_os_str() != "-");
    let result = match input_path {
        Some(path) => match File::open(path) {
            Ok(file) => {
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                let progress = progress_bar(&args, size);
                let input = BufReader::with_capacity(1 << 20, file);
                let result = run_with_io(
                    &args,
                    input,
                    stdout.lock(),
                    stderr.lock(),
                    progress.as_ref(),
                );
                if let Some(bar) = progress {
                    bar.finish_and_clear();
                }
                result
            }
            Err(source) => Err(CliError::Read {
                path: path.clone(),
                source,
            }),
        },
        None => {
            let input = BufReader::with_capacity(1 << 20, io::stdin().lock());
            run_with_io(&args, input, stdout.lock(), stderr.lock(), None)
        }
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        // A closed pipe (`wagate rate … | head`) is the reader's choice, not a failure.
        Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr(), "wagate rate: {error}");
            ExitCode::from(2)
        }
    }
}

/// Input files at least this large get a progress bar (when standard error is a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

fn progress_bar(args: &RateArgs, size: u64) -> Option<ProgressBar> {
    if args.no_progress || size < PROGRESS_MIN_BYTES || !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// The built-in data plus the operator's rate cards and tier tables (`[DATE=]FILE` each, in
/// Meta's CSV layouts): what `wagate rate` and the server price with.
pub fn load_data(rate_cards: &[String], tiers: &[String]) -> Result<PricingData, CliError> {
    let mut data = PricingData::builtin()?;
    for spec in rate_cards {
        let (date, path) = dated_path(spec);
        let text = read(path)?;
        data.add_rate_cards(&text, &path.display().to_string(), date)?;
    }
    for spec in tiers {
        let (date, path) = dated_path(spec);
        let text = read(path)?;
        data.add_tiers(&text, &path.display().to_string(), date)?;
    }
    Ok(data)
}

/// Loads the data files named in `args` into an engine.
pub fn load_engine(args: &RateArgs) -> Result<Engine, CliError> {
    let data = load_data(&args.rate_card, &args.tiers)?;
    let wabas = match &args.wabas {
        Some(path) => WabaDirectory::from_csv(&read(path)?, &path.display().to_string())?,
        None => WabaDirectory::default(),
    };
    let auth_intl = match &args.auth_intl {
        Some(path) => AuthIntl::from_csv(&read(path)?, &path.display().to_string())?,
        None => AuthIntl::default(),
    };
    Ok(Engine::new(data, wabas, auth_intl))
}

/// Splits `2026-07-01=Pricing.csv` into its date and path (a path is kept whole when what
/// precedes `=` is not a date).
fn dated_path(spec: &str) -> (Option<Date>, &Path) {
    if let Some((date, path)) = spec.split_once('=') {
        if let Ok(date) = date.parse::<Date>() {
            return (Some(date), Path::new(path));
        }
    }
    (None, Path::new(spec))
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Output is gathered in a buffer and written in blocks of about this size.
const OUTPUT_BLOCK: usize = 1 << 16;

/// `wagate rate` on any streams: loads the data files, rates `input`, writes one line per
/// business message to `out`, reports malformed lines (and the `--summary` table) to `err`.
pub fn run_with_io(
    args: &RateArgs,
    mut input: impl BufRead,
    mut out: impl Write,
    mut err: impl Write,
    progress: Option<&ProgressBar>,
) -> Result<RunOutcome, CliError> {
    let engine = load_engine(args)?;
    let mut rater = Rater {
        writer: OutputWriter::new(&engine.data().markets),
        engine,
        outcome: RunOutcome::default(),
        block: Vec::with_capacity(OUTPUT_BLOCK + 1024),
        last_at: Instant::NEVER,
        last_at_line: 0,
    };
    // Lines are rated straight from the reader's buffer; only a line cut by the buffer's
    // end is copied (into `pending`).
    let mut pending: Vec<u8> = Vec::new();
    let mut bytes_read: u64 = 0;
    loop {
        let buffer = input.fill_buf().map_err(CliError::Input)?;
        if buffer.is_empty() {
            break;
        }
        let length = buffer.len();
        let mut used = 0;
        if !pending.is_empty() {
            match memchr::memchr(b'\n', buffer) {
                Some(end) => {
                    pending.extend_from_slice(&buffer[..end]);
                    rater.line(&pending, &mut out, &mut err)?;
                    pending.clear();
                    used = end + 1;
                }
                None => {
                    pending.extend_from_slice(buffer);
                    used = length;
                }
            }
        }
        while used < length {
            match memchr::memchr(b'\n', &buffer[used..]) {
                Some(end) => {
                    rater.line(&buffer[used..used + end], &mut out, &mut err)?;
                    used += end + 1;
                }
                None => {
                    pending.extend_from_slice(&buffer[used..]);
                    used = length;
                }
            }
        }
        input.consume(length);
        bytes_read += length as u64;
        if let Some(bar) = progress {
            bar.set_position(bytes_read);
        }
    }
    if !pending.is_empty() {
        rater.line(&pending, &mut out, &mut err)?;
    }
    let Rater {
        engine,
        outcome,
        block,
        ..
    } = rater;
    out.write_all(&block).map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)?;
    if args.summary {
        outcome
            .summary
            .write_table(&mut err, &engine.data().markets)
            .map_err(CliError::Output)?;
    }
    if outcome.malformed > 0 {
        writeln!(
            err,
            "wagate rate: {} malformed line(s) skipped",
            outcome.malformed
        )
        .map_err(CliError::Output)?;
    }
    err.flush().map_err(CliError::Output)?;
    Ok(outcome)
}

/// The state of one run between lines.
struct Rater {
    engine: Engine,
    writer: OutputWriter,
    outcome: RunOutcome,
    block: Vec<u8>,
    last_at: Instant,
    last_at_line: u64,
}

impl Rater {
    /// Rates one line (without its newline).
    fn line(
        &mut self,
        line: &[u8],
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> Result<(), CliError> {
        self.outcome.lines += 1;
        let number = self.outcome.lines;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let event = match jsonl::parse_line(line) {
            Ok(event) => event,
            Err(error) => {
                self.outcome.malformed += 1;
                return writeln!(err, "line {number}: {error}; skipped").map_err(CliError::Output);
            }
        };
        if event.at < self.last_at {
            self.outcome.malformed += 1;
            return writeln!(
                err,
                "line {number}: `ts` {} is earlier than line {}'s; events must be in time order; skipped",
                event.at.to_timestamp(),
                self.last_at_line
            )
            .map_err(CliError::Output);
        }
        self.last_at = event.at;
        self.last_at_line = number;
        let waba = self.engine.waba(&event.waba);
        let rated = self.engine.rate(&Event {
            at: event.at,
            waba,
            business: event.business,
            user: event.user,
            kind: event.kind,
        });
        if let (Some(result), EventKind::BusinessMessage(_)) = (rated, event.kind) {
            self.outcome.outputs += 1;
            self.outcome.summary.add(&result);
            let id = event.id.as_deref().unwrap_or("");
            self.writer.write(&mut self.block, id, &result);
            if self.block.len() >= OUTPUT_BLOCK {
                out.write_all(&self.block).map_err(CliError::Output)?;
                self.block.clear();
            }
        }
        Ok(())
    }
}
