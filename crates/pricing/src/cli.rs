//! `wagate rate`: the only part of the crate that reads files and writes to standard streams.
//!
//! Exit status: 0 when every line was rated; 1 when some input lines were malformed (each
//! is reported on standard error with its line number and skipped); 2 for usage and data-file
//! errors (unreadable file, bad CSV, unknown time zone) and failed output. Refused messages
//! (`outside_customer_service_window`) and `no_rate_card` are results, not errors.

use std::collections::VecDeque;
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
use crate::event::{Event, EventKind, Outcome};
use crate::instant::Instant;
use crate::jsonl::OutputWriter;
use crate::pipeline::{Chunk, ChunkReader, ParsedLine};
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

/// How many events ahead of the one being rated the rater looks up its pair (see
/// [`Engine::warm`]).
const WARM_AHEAD: usize = 16;

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
/// Lines are parsed on a second thread and output is formatted and written on a third while
/// this one prices, in order; what is written is the same as parsing, pricing and writing
/// one line after the other (also when a stream fails part way).
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
    let writer = OutputWriter::new(&engine.data().markets);
    let mut rater = Rater {
        engine,
        outcome: RunOutcome::default(),
        last_at: Instant::NEVER,
        last_at_line: 0,
    };
    let mut reader = ChunkReader::new(input, read_size);
    let (block, summary) = std::thread::scope(|scope| {
        let emitter = Emitter {
            out: &mut out,
            err: &mut err,
            writer,
            block: Vec::with_capacity(OUTPUT_BLOCK + 1024),
            summary: Summary::default(),
        };
        let mut sink = Sink::new(scope, emitter, parallel);
        // The parse thread takes chunks from a queue of one: when this thread finds it full,
        // it parses the chunk itself rather than wait, so parsing goes wherever there is
        // time for it.
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
        let mut spare_rated: Vec<Vec<Rated>> = Vec::new();
        let mut input_error = None;
        let priced = loop {
            while input_error.is_none() && slots.len() < READ_AHEAD {
                for batch in sink.written() {
                    reader.recycle(batch.chunk);
                    spare_rated.push(batch.rated);
                }
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
            let mut rated = spare_rated.pop().unwrap_or_default();
            rated.clear();
            rater.chunk(&chunk, &mut rated);
            if let Err(e) = sink.send(Batch { chunk, rated }) {
                break Err(e);
            }
        };
        // A failed write stops the writer thread: its error is the run's, as it was when
        // this thread wrote and stopped at the first failure.
        let written = sink.finish()?;
        priced?;
        match input_error {
            Some(e) => Err(CliError::Input(e)),
            None => Ok(written),
        }
    })?;
    let Rater {
        engine,
        mut outcome,
        ..
    } = rater;
    outcome.summary = summary;
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

/// What rating one line gave that has to be written, in input order.
#[derive(Clone, Copy, Debug)]
enum Rated {
    /// A business message's output line; `line` is its index in the chunk (for its id).
    Output {
        /// Index of the line in its chunk.
        line: u32,
        /// What the engine said.
        outcome: Outcome,
    },
    /// A line that is not a valid event (its error is in the chunk).
    Malformed {
        /// Index of the line in its chunk.
        line: u32,
        /// Line number in the input.
        number: u64,
    },
    /// A valid event earlier than the one before it.
    OutOfOrder {
        /// Line number in the input.
        number: u64,
        /// Its time.
        at: Instant,
        /// The line number of the last event rated.
        previous: u64,
    },
}

/// A priced chunk on its way to be written.
struct Batch {
    chunk: Chunk,
    rated: Vec<Rated>,
}

/// Writes what the rater decided: output lines in blocks, messages about lines, and the
/// totals. It runs on its own thread, so that formatting output and copying a GB of it into
/// the kernel do not take the pricing thread's time.
struct Emitter<O, E> {
    out: O,
    err: E,
    writer: OutputWriter,
    block: Vec<u8>,
    summary: Summary,
}

impl<O: Write, E: Write> Emitter<O, E> {
    /// Writes one priced chunk, with the same writes, in the same order, as when each line
    /// was written as soon as it was rated.
    fn batch(&mut self, batch: &Batch) -> io::Result<()> {
        let chunk = &batch.chunk;
        for rated in &batch.rated {
            match rated {
                Rated::Output { line, outcome } => {
                    self.summary.add(outcome);
                    self.writer.write(&mut self.block, chunk.id(*line), outcome);
                    if self.block.len() >= OUTPUT_BLOCK {
                        self.out.write_all(&self.block)?;
                        self.block.clear();
                    }
                }
                Rated::Malformed { line, number } => {
                    let error = chunk.error(*line).map_or("", |e| e.0.as_str());
                    writeln!(self.err, "line {number}: {error}; skipped")?;
                }
                Rated::OutOfOrder {
                    number,
                    at,
                    previous,
                } => writeln!(
                    self.err,
                    "line {number}: `ts` {} is earlier than line {previous}'s; events must be in time order; skipped",
                    at.to_timestamp(),
                )?,
            }
        }
        Ok(())
    }
}

/// Priced chunks queued for the writer thread: enough to ride out a slow write.
const WRITE_AHEAD: usize = 4;

/// The emitter of a run, what is left of its output and its totals.
type Written = (Vec<u8>, Summary);

/// Where priced chunks go: a writer thread, or the emitter on this thread.
enum Sink<'scope, O: Write + Send, E: Write + Send> {
    /// A writer thread, which stops at the first failed write (and returns its error), so
    /// the streams hold what they held when rating stopped at that failure.
    Thread {
        queue: SyncSender<Batch>,
        /// Batches written, to be filled again.
        written: Receiver<Batch>,
        thread: ScopedJoinHandle<'scope, io::Result<Written>>,
    },
    /// This thread writes.
    Direct {
        emitter: Emitter<&'scope mut O, &'scope mut E>,
        /// The batch just written, to be filled again.
        written: Option<Batch>,
    },
}

impl<'scope, O: Write + Send, E: Write + Send> Sink<'scope, O, E> {
    /// A writer thread in `scope` when `parallel` and one can be started, else this thread.
    fn new<'env>(
        scope: &'scope Scope<'scope, 'env>,
        emitter: Emitter<&'scope mut O, &'scope mut E>,
        parallel: bool,
    ) -> Self {
        if !parallel {
            return Sink::Direct {
                emitter,
                written: None,
            };
        }
        let (queue, batches) = mpsc::sync_channel::<Batch>(WRITE_AHEAD);
        let (give_back, written) = mpsc::channel::<Batch>();
        // The emitter (and the streams) go to the thread once it runs, so that they are
        // still here if it cannot be started.
        let (hand_over, handed) = mpsc::sync_channel::<Emitter<&'scope mut O, &'scope mut E>>(1);
        let started = std::thread::Builder::new()
            .name("wagate-rate-write".into())
            .spawn_scoped(scope, move || -> io::Result<Written> {
                let Ok(mut emitter) = handed.recv() else {
                    return Ok(Written::default());
                };
                for batch in batches {
                    emitter.batch(&batch)?;
                    // The rater may have finished: then the batch is just dropped.
                    let _ = give_back.send(batch);
                }
                Ok((emitter.block, emitter.summary))
            });
        let direct = |emitter| Sink::Direct {
            emitter,
            written: None,
        };
        match started {
            Ok(thread) => match hand_over.send(emitter) {
                Ok(()) => Sink::Thread {
                    queue,
                    written,
                    thread,
                },
                Err(mpsc::SendError(emitter)) => direct(emitter),
            },
            Err(_) => direct(emitter),
        }
    }

    /// Writes a priced chunk (or queues it to be).
    fn send(&mut self, batch: Batch) -> Result<(), CliError> {
        match self {
            Sink::Thread { queue, .. } => queue.send(batch).map_err(|_| {
                // Only a failed write stops the thread; `finish` returns that failure.
                CliError::Output(io::Error::other("the output thread stopped"))
            }),
            Sink::Direct { emitter, written } => {
                emitter.batch(&batch).map_err(CliError::Output)?;
                *written = Some(batch);
                Ok(())
            }
        }
    }

    /// The batches written since last asked, to be filled again.
    fn written(&mut self) -> Vec<Batch> {
        match self {
            Sink::Thread { written, .. } => written.try_iter().collect(),
            Sink::Direct { written, .. } => written.take().into_iter().collect(),
        }
    }

    /// Waits until everything sent is written: what is left of the output and the totals,
    /// or the first failed write's error.
    fn finish(self) -> Result<Written, CliError> {
        match self {
            Sink::Thread { queue, thread, .. } => {
                drop(queue);
                match thread.join() {
                    Ok(result) => result.map_err(CliError::Output),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Sink::Direct { emitter, .. } => Ok((emitter.block, emitter.summary)),
        }
    }
}

/// The pricing state of one run between lines.
struct Rater {
    engine: Engine,
    outcome: RunOutcome,
    last_at: Instant,
    last_at_line: u64,
}

impl Rater {
    /// Rates the lines of a parsed chunk in order; what is to be written goes to `rated`.
    fn chunk(&mut self, chunk: &Chunk, rated: &mut Vec<Rated>) {
        let lines = &chunk.lines;
        for (index, line) in lines.iter().enumerate() {
            if index % WARM_AHEAD == 0 {
                // The next batch's lookups back to back, so that their waits overlap (the
                // first time, this batch's and the next).
                let from = if index == 0 { 0 } else { index + WARM_AHEAD };
                let to = (index + 2 * WARM_AHEAD).min(lines.len());
                for line in lines.get(from..to).unwrap_or_default() {
                    if let ParsedLine::Event(event) = line {
                        self.engine.warm(event.business, event.user);
                    }
                }
            }
            // A chunk is a read's worth of lines (a few MB at most), far below 4 G lines.
            let index = index as u32;
            self.outcome.lines += 1;
            let number = self.outcome.lines;
            let event = match line {
                ParsedLine::Blank => continue,
                ParsedLine::Malformed(_) => {
                    self.outcome.malformed += 1;
                    rated.push(Rated::Malformed {
                        line: index,
                        number,
                    });
                    continue;
                }
                ParsedLine::Event(event) => event,
            };
            if event.at < self.last_at {
                self.outcome.malformed += 1;
                rated.push(Rated::OutOfOrder {
                    number,
                    at: event.at,
                    previous: self.last_at_line,
                });
                continue;
            }
            self.last_at = event.at;
            self.last_at_line = number;
            let waba = self.engine.waba(chunk.waba(event));
            let result = self.engine.rate(&Event {
                at: event.at,
                waba,
                business: event.business,
                user: event.user,
                kind: event.kind,
            });
            if let (Some(outcome), EventKind::BusinessMessage(_)) = (result, event.kind) {
                self.outcome.outputs += 1;
                rated.push(Rated::Output {
                    line: index,
                    outcome,
                });
            }
        }
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
            assert!(
                closing_run(&input, out_limit, err_limit, true) == expected,
                "out {out_limit}, err {err_limit}"
            );
        }
    }
}
