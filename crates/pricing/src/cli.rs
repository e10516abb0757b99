//! `wagate rate`: the only part of the crate that reads files and writes to standard streams.
//!
//! Exit status: 0 when every line was rated; 1 when some input lines were malformed (each
//! is reported on standard error with its line number and skipped); 2 for usage and data-file
//! errors (unreadable file, bad CSV, unknown time zone) and failed output. Refused messages
//! (`outside_customer_service_window`) and `no_rate_card` are results, not errors.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{Scope, ScopedJoinHandle};

use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::Date;

use crate::auth_intl::AuthIntl;
use crate::data::PricingData;
use crate::engine::Engine;
use crate::error::DataError;
use crate::event::{Event, EventKind};
use crate::instant::Instant;
use crate::jsonl::OutputWriter;
use crate::pipeline::{Chunk, ChunkReader, ParsedEvent, ParsedLine};
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
                let input = BufReader::with_capacity(INPUT_BUFFER, file);
                let result = run_with_io(&args, input, &stdout, &stderr, progress.as_ref());
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
            let input = BufReader::with_capacity(INPUT_BUFFER, io::stdin().lock());
            run_with_io(&args, input, &stdout, &stderr, None)
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

/// The input's own buffer: smaller than a read of [`READ_SIZE`], so reads bypass it and the
/// kernel copies the input straight into the chunks.
const INPUT_BUFFER: usize = 64 << 10;

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

/// Input is read (and handed to a parser) this many bytes at a time: a few thousand events,
/// enough that passing a chunk between threads costs nothing next to parsing it, small
/// enough that a chunk is still in cache when it is priced.
const READ_SIZE: usize = 256 << 10;

/// Chunks read ahead of the one being priced; bounds the memory (a few MB) and gives the
/// parse thread work to do while the engine is busy.
const READ_AHEAD: usize = 4;

/// `wagate rate` on any streams: loads the data files, rates `input`, writes one line per
/// business message to `out`, reports malformed lines (and the `--summary` table) to `err`.
///
/// Lines are parsed on a second thread and output is written from a third while this one
/// prices, in order; what is written is the same as parsing, pricing and writing one line
/// after the other (also when a stream fails part way).
pub fn run_with_io(
    args: &RateArgs,
    input: impl BufRead,
    out: impl Write + Send,
    err: impl Write + Send,
    progress: Option<&ProgressBar>,
) -> Result<RunOutcome, CliError> {
    rate_stream(args, input, out, err, progress, READ_SIZE, true)
}

/// Where the parsed form of a chunk read ahead will come from.
enum Slot {
    /// The parse thread has it (it returns chunks in the order it was given them).
    Worker,
    /// Parsed here, because the parse thread had enough queued.
    Local(Chunk),
}

/// [`run_with_io`] with the read size and the use of helper threads as parameters (tests
/// use tiny reads to cut lines everywhere, and the one-thread run as a reference).
fn rate_stream<O: Write + Send, E: Write + Send>(
    args: &RateArgs,
    input: impl BufRead,
    mut out: O,
    mut err: E,
    progress: Option<&ProgressBar>,
    read_size: usize,
    parallel: bool,
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
    let mut reader = ChunkReader::new(input, read_size);
    std::thread::scope(|scope| -> Result<(), CliError> {
        let mut sink = Sink::new(scope, &mut out, &mut err, parallel);
        // The parse thread takes chunks from a queue of one: when this thread finds it full,
        // it parses the chunk itself rather than wait, so the two cores share the parsing
        // in whatever ratio keeps both busy.
        let (to_parse, parse_queue) = mpsc::sync_channel::<Chunk>(1);
        // Room for every chunk read ahead: the parse thread never waits to hand one back.
        let (parsed_sender, parsed) = mpsc::sync_channel::<Chunk>(READ_AHEAD);
        let worker = parallel
            .then(|| {
                std::thread::Builder::new()
                    .name("wagate-rate-parse".into())
                    .spawn_scoped(scope, move || {
                        for mut chunk in parse_queue {
                            chunk.parse();
                            if parsed_sender.send(chunk).is_err() {
                                break;
                            }
                        }
                    })
                    // Without a second thread the run is slower, not wrong.
                    .ok()
            })
            .flatten();
        let to_parse = worker.map(|_| to_parse);
        let mut slots = VecDeque::with_capacity(READ_AHEAD);
        let mut input_error = None;
        let priced = loop {
            while input_error.is_none() && slots.len() < READ_AHEAD {
                let chunk = match reader.next_chunk() {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(e) => {
                        // The lines before the failure are still priced, as before.
                        input_error = Some(e);
                        break;
                    }
                };
                if let Some(bar) = progress {
                    bar.set_position(reader.bytes_read);
                }
                let rejected = match &to_parse {
                    Some(queue) => match queue.try_send(chunk) {
                        Ok(()) => None,
                        Err(TrySendError::Full(chunk) | TrySendError::Disconnected(chunk)) => {
                            Some(chunk)
                        }
                    },
                    None => Some(chunk),
                };
                slots.push_back(match rejected {
                    None => Slot::Worker,
                    Some(mut chunk) => {
                        chunk.parse();
                        Slot::Local(chunk)
                    }
                });
            }
            let chunk = match slots.pop_front() {
                None => break Ok(()),
                Some(Slot::Local(chunk)) => chunk,
                // Only a panic in the parse thread closes its channel; the scope passes
                // that panic on when it ends.
                Some(Slot::Worker) => match parsed.recv() {
                    Ok(chunk) => chunk,
                    Err(_) => break Ok(()),
                },
            };
            if let Err(e) = rater.chunk(&chunk, &mut sink) {
                break Err(e);
            }
            reader.recycle(chunk);
        };
        // A failed write stopped the writer thread first: its error is the run's, as it was
        // when this thread wrote and stopped at the first failure.
        sink.finish()?;
        priced?;
        match input_error {
            Some(e) => Err(CliError::Input(e)),
            None => Ok(()),
        }
    })?;
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

/// Output blocks written ahead by the writer thread: enough to ride out a slow write,
/// little memory (a MB).
const WRITE_AHEAD: usize = 16;

/// What the writer thread writes, in the order the rater produced it.
enum Written {
    /// A block of output lines.
    Out(Vec<u8>),
    /// A message for standard error.
    Err(Vec<u8>),
}

/// Where the rater's output goes: a thread that writes it, so that copying a GB of output
/// into the kernel does not take the pricing thread's time, or the streams themselves.
enum Sink<'scope, O: Write + Send, E: Write + Send> {
    /// A writer thread, which stops at the first failed write (and returns the error), so the
    /// streams hold what they held when rating stopped at that failure.
    Thread {
        queue: SyncSender<Written>,
        /// Blocks written, to be filled again.
        spare: Receiver<Vec<u8>>,
        thread: ScopedJoinHandle<'scope, io::Result<()>>,
    },
    /// This thread writes.
    Direct {
        out: &'scope mut O,
        err: &'scope mut E,
    },
}

impl<'scope, O: Write + Send, E: Write + Send> Sink<'scope, O, E> {
    /// A writer thread in `scope` when `parallel` and one can be started, else direct writes.
    fn new<'env>(
        scope: &'scope Scope<'scope, 'env>,
        out: &'scope mut O,
        err: &'scope mut E,
        parallel: bool,
    ) -> Self {
        if !parallel {
            return Sink::Direct { out, err };
        }
        let (queue, writes) = mpsc::sync_channel::<Written>(WRITE_AHEAD);
        let (give_back, spare) = mpsc::channel::<Vec<u8>>();
        // The streams go to the thread once it runs, so that they are still ours if it cannot
        // be started.
        let (hand_over, streams) = mpsc::sync_channel::<(&'scope mut O, &'scope mut E)>(1);
        let started = std::thread::Builder::new()
            .name("wagate-rate-write".into())
            .spawn_scoped(scope, move || -> io::Result<()> {
                let Ok((out, err)) = streams.recv() else {
                    return Ok(());
                };
                for written in writes {
                    match written {
                        Written::Out(block) => {
                            out.write_all(&block)?;
                            // The rater may have finished: then the block is just dropped.
                            let _ = give_back.send(block);
                        }
                        Written::Err(message) => err.write_all(&message)?,
                    }
                }
                Ok(())
            });
        match started {
            Ok(thread) => match hand_over.send((out, err)) {
                Ok(()) => Sink::Thread {
                    queue,
                    spare,
                    thread,
                },
                Err(mpsc::SendError((out, err))) => Sink::Direct { out, err },
            },
            Err(_) => Sink::Direct { out, err },
        }
    }

    /// Writes a full block of output lines and leaves `block` empty.
    fn out(&mut self, block: &mut Vec<u8>) -> Result<(), CliError> {
        match self {
            Sink::Thread { queue, spare, .. } => {
                let mut fresh = spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(OUTPUT_BLOCK + 1024));
                fresh.clear();
                std::mem::swap(block, &mut fresh);
                queue
                    .send(Written::Out(fresh))
                    .map_err(|_| writer_stopped())
            }
            Sink::Direct { out, .. } => {
                out.write_all(block).map_err(CliError::Output)?;
                block.clear();
                Ok(())
            }
        }
    }

    /// Writes a message to standard error.
    fn err(&mut self, message: fmt::Arguments<'_>) -> Result<(), CliError> {
        match self {
            Sink::Thread { queue, .. } => {
                let mut bytes = Vec::new();
                // Writing into a Vec cannot fail.
                let _ = bytes.write_fmt(message);
                queue
                    .send(Written::Err(bytes))
                    .map_err(|_| writer_stopped())
            }
            Sink::Direct { err, .. } => err.write_fmt(message).map_err(CliError::Output),
        }
    }

    /// Waits until everything sent is written; the first failed write's error if any.
    fn finish(self) -> Result<(), CliError> {
        match self {
            Sink::Thread { queue, thread, .. } => {
                drop(queue);
                match thread.join() {
                    Ok(result) => result.map_err(CliError::Output),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Sink::Direct { .. } => Ok(()),
        }
    }
}

/// The writer thread stopped, which it only does after a failed write: [`Sink::finish`]
/// returns that failure instead of this.
fn writer_stopped() -> CliError {
    CliError::Output(io::Error::other("the output thread stopped"))
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
    /// Rates the lines of a parsed chunk, in order.
    fn chunk<O: Write + Send, E: Write + Send>(
        &mut self,
        chunk: &Chunk,
        sink: &mut Sink<'_, O, E>,
    ) -> Result<(), CliError> {
        for line in &chunk.lines {
            self.outcome.lines += 1;
            match line {
                ParsedLine::Blank => {}
                ParsedLine::Malformed(error) => {
                    self.outcome.malformed += 1;
                    let number = self.outcome.lines;
                    sink.err(format_args!("line {number}: {error}; skipped\n"))?;
                }
                ParsedLine::Event(event) => self.event(chunk, event, sink)?,
            }
        }
        Ok(())
    }

    /// Rates one well-formed event (the current line).
    fn event<O: Write + Send, E: Write + Send>(
        &mut self,
        chunk: &Chunk,
        event: &ParsedEvent,
        sink: &mut Sink<'_, O, E>,
    ) -> Result<(), CliError> {
        let number = self.outcome.lines;
        if event.at < self.last_at {
            self.outcome.malformed += 1;
            return sink.err(format_args!(
                "line {number}: `ts` {} is earlier than line {}'s; events must be in time order; skipped\n",
                event.at.to_timestamp(),
                self.last_at_line
            ));
        }
        self.last_at = event.at;
        self.last_at_line = number;
        let waba = self.engine.waba(chunk.waba(event));
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
            self.writer.write(&mut self.block, chunk.id(event), &result);
            if self.block.len() >= OUTPUT_BLOCK {
                sink.out(&mut self.block)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonl;
    use crate::synth::{write_jsonl, Generator, SynthConfig};
    use std::io::{Cursor, Read};

    /// `run_with_io` as it was before parsing moved to chunks and a second thread, line by
    /// line from the reader's buffer: the reference the pipeline must match byte for byte.
    fn sequential(
        args: &RateArgs,
        mut input: impl BufRead,
        mut out: impl Write,
        mut err: impl Write,
    ) -> Result<RunOutcome, CliError> {
        let engine = load_engine(args)?;
        let mut rater = LineRater {
            writer: OutputWriter::new(&engine.data().markets),
            engine,
            outcome: RunOutcome::default(),
            block: Vec::with_capacity(OUTPUT_BLOCK + 1024),
            last_at: Instant::NEVER,
            last_at_line: 0,
        };
        let mut pending: Vec<u8> = Vec::new();
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
        }
        if !pending.is_empty() {
            rater.line(&pending, &mut out, &mut err)?;
        }
        let LineRater {
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

    struct LineRater {
        engine: Engine,
        writer: OutputWriter,
        outcome: RunOutcome,
        block: Vec<u8>,
        last_at: Instant,
        last_at_line: u64,
    }

    impl LineRater {
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
                    return writeln!(err, "line {number}: {error}; skipped")
                        .map_err(CliError::Output);
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

    /// Generated traffic (enough for several output blocks) with every kind of line the
    /// rater treats apart: blank, whitespace with `\r`, CRLF, not JSON, invalid UTF-8, a
    /// valid event out of time order, escapes (serde's path), and a last line without `\n`.
    fn awkward_input() -> Vec<u8> {
        let config = SynthConfig {
            users: 300,
            ..SynthConfig::default()
        };
        let mut lines: Vec<Vec<u8>> = Generator::new(config)
            .take(6_000)
            .map(|event| {
                let mut line = Vec::new();
                write_jsonl(&event, &mut line);
                line.pop();
                line
            })
            .collect();
        let early = br#"{"ts":"2020-01-01T00:00:00Z","waba":"w","business":"+15550001111","user":"+919876543210","dir":"in"}"#;
        let escaped = br#"{"ts":"2099-01-01T00:00:00Z","id":"wamid.\"q\"\u00e9","waba":"w\u0041","business":"+15550001111","user":"+919876543210","dir":"out","type":"text"}"#;
        lines.insert(3, b"{not json".to_vec());
        lines.insert(10, Vec::new());
        lines.insert(20, b"  \t\r".to_vec());
        lines.insert(1_000, early.to_vec());
        lines.insert(2_000, b"{\"ts\":\"\xff\"}".to_vec());
        lines.insert(
            3_000,
            br#"{"ts":"2026-09-28T00:00:00Z","dir":"sideways"}"#.to_vec(),
        );
        lines[4_000].push(b'\r');
        lines.push(escaped.to_vec());
        let mut input = lines.join(&b'\n');
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&lines[5]);
        input
    }

    fn args() -> RateArgs {
        RateArgs {
            summary: true,
            ..RateArgs::default()
        }
    }

    /// Standard output, standard error and the counts of a run (or its error).
    type Run = (Vec<u8>, Vec<u8>, Result<(u64, u64, u64), String>);

    fn summed(result: Result<RunOutcome, CliError>) -> Result<(u64, u64, u64), String> {
        result
            .map(|o| (o.lines, o.outputs, o.malformed))
            .map_err(|e| e.to_string())
    }

    fn reference(input: impl BufRead) -> Run {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let result = sequential(&args(), input, &mut out, &mut err);
        (out, err, summed(result))
    }

    fn pipelined(input: impl BufRead, read_size: usize, parallel: bool) -> Run {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let result = rate_stream(
            &args(),
            input,
            &mut out,
            &mut err,
            None,
            read_size,
            parallel,
        );
        (out, err, summed(result))
    }

    #[test]
    fn the_pipeline_writes_what_line_by_line_rating_wrote() {
        let input = awkward_input();
        let expected = reference(Cursor::new(&input));
        let (out, err, counts) = &expected;
        // Three bad lines, one out of time order, and the last (a copy of an early line).
        assert_eq!(
            counts,
            &Ok((6_008, out.iter().filter(|&&b| b == b'\n').count() as u64, 5))
        );
        assert!(out.len() > 4 * OUTPUT_BLOCK, "several output blocks");
        let err = String::from_utf8_lossy(err);
        assert!(
            err.contains("line 1001: `ts` 2020-01-01T00:00:00Z is earlier than line 1000's"),
            "{err}"
        );
        assert!(String::from_utf8_lossy(out).contains(r#""id":"wamid.\"q\"é""#));
        // Reads this small cut lines everywhere (mid-line, mid-`\r\n`, mid-character) and
        // make thousands of chunks, so both the parse thread and this one parse some.
        for read_size in [1, 7, 100, 4096, READ_SIZE] {
            assert!(
                pipelined(Cursor::new(&input), read_size, true) == expected,
                "read {read_size}"
            );
            assert!(
                pipelined(Cursor::new(&input), read_size, false) == expected,
                "read {read_size}, one thread"
            );
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        let result = run_with_io(&args(), Cursor::new(&input), &mut out, &mut err, None);
        assert!((out, err, summed(result)) == expected);
    }

    #[test]
    fn edges_of_the_input_match_too() {
        for input in [
            &b""[..],
            b"\n",
            b"\r",
            b"\n\n  \n",
            b"{",
            br#"{"ts":"2026-03-02T00:00:00Z","id":"a","waba":"w","business":"+15550001111","user":"+447700900123","dir":"out","type":"template","category":"marketing"}"#,
        ] {
            for read_size in [1, 2, READ_SIZE] {
                assert!(
                    pipelined(Cursor::new(input), read_size, true) == reference(Cursor::new(input)),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    /// Serves its bytes, then fails.
    struct Failing(Cursor<Vec<u8>>);

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::Error::other("disk on fire")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_failing_input_stops_where_it_did() {
        let input = awkward_input();
        // Cut mid-line, so the failure also drops a partial line, as before.
        let cut = input.len() * 2 / 3 + 17;
        for read_size in [5, 4096, READ_SIZE] {
            let failing =
                || BufReader::with_capacity(4096, Failing(Cursor::new(input[..cut].to_vec())));
            let expected = reference(failing());
            assert!(matches!(expected.2, Err(ref e) if e.contains("disk on fire")));
            assert!(
                pipelined(failing(), read_size, true) == expected,
                "read {read_size}"
            );
        }
    }

    /// Takes `limit` bytes, then reports a closed pipe.
    struct Closing(Vec<u8>, usize);

    impl Write for Closing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0.len() + buf.len() > self.1 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A run into streams that fail: what reached each stream, and the error.
    fn closing_run(
        input: &[u8],
        out_limit: usize,
        err_limit: usize,
        pipelined: bool,
    ) -> (Vec<u8>, Vec<u8>, String) {
        let mut out = Closing(Vec::new(), out_limit);
        let mut err = Closing(Vec::new(), err_limit);
        let result = if pipelined {
            rate_stream(
                &args(),
                Cursor::new(input),
                &mut out,
                &mut err,
                None,
                4096,
                true,
            )
        } else {
            sequential(&args(), Cursor::new(input), &mut out, &mut err)
        };
        let error = match result {
            Err(CliError::Output(e)) => e.to_string(),
            other => panic!("the output fails: {:?}", other.map(|o| o.lines)),
        };
        (out.0, err.0, error)
    }

    #[test]
    fn a_closed_stream_stops_both_where_they_did() {
        // A malformed line every 50, so standard error is written all along.
        let mut input = Vec::new();
        for (i, line) in awkward_input().split(|&b| b == b'\n').enumerate() {
            if i % 50 == 49 {
                input.extend_from_slice(b"{bad\n");
            }
            input.extend_from_slice(line);
            input.push(b'\n');
        }
        for (out_limit, err_limit) in [
            (0, usize::MAX),
            (3 * OUTPUT_BLOCK + 5, usize::MAX),
            (usize::MAX, 0),
            (usize::MAX, 2_000),
        ] {
            let expected = closing_run(&input, out_limit, err_limit, false);
            if out_limit > 0 && err_limit > 0 {
                // Stopped part way: both streams got something.
                assert!(!expected.0.is_empty() && !expected.1.is_empty());
            }
            let (out, err, error) = closing_run(&input, out_limit, err_limit, true);
            assert!(out == expected.0, "out {out_limit}, err {err_limit}");
            assert_eq!(error, expected.2);
            // The one difference: a message is now written whole (one write, so lines stay
            // whole next to the progress bar) where `writeln!` wrote its pieces, so a stream
            // failing mid-message may have had the first pieces of that message before.
            let whole_lines = |e: &[u8]| e.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            assert!(
                err == expected.1[..whole_lines(&expected.1)],
                "out {out_limit}, err {err_limit}"
            );
        }
    }
}
