//! The input side of `wagate rate` in chunks of whole lines, so that parsing (more than half
//! of the work) can run on another core while the engine, which must see events one at a
//! time in order, prices the previous chunk.
//!
//! A [`Chunk`] travels: [`ChunkReader`] fills it with whole lines, [`Chunk::parse`] (on
//! whichever thread has time) turns its lines into [`ParsedLine`]s, the rater consumes them
//! in order, and the chunk comes back to the reader's pool so its buffers are reused.

use std::io::{self, Read};

use crate::event::EventKind;
use crate::instant::Instant;
use crate::jsonl::{self, LineError};
use crate::phone::Phone;

/// A run of whole input lines and, once parsed, what each of them says.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// The bytes; only `..end` are input, the rest is room for the next read (kept, not
    /// truncated, so reusing the buffer does not zero it again).
    bytes: Vec<u8>,
    /// Length of the input in `bytes`: whole lines, each with its `\n`, except that the last
    /// chunk of the input may end with a line without one.
    end: usize,
    /// One entry per input line, in order (filled by [`Chunk::parse`]).
    pub(crate) lines: Vec<ParsedLine>,
    /// The WABA names and message ids of the parsed events, back to back (events refer to
    /// them by range): copying a few dozen bytes per event is cheaper than keeping the raw
    /// bytes valid as `str` without `unsafe`.
    text: String,
}

/// What one input line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParsedLine {
    /// Empty or only whitespace: counted, otherwise ignored.
    Blank,
    /// Not a valid event: reported with its line number and skipped.
    Malformed(LineError),
    /// A valid event (whether it is in time order is for the rater to say).
    Event(ParsedEvent),
}

/// A parsed event whose strings live in its chunk's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParsedEvent {
    /// `ts`.
    pub(crate) at: Instant,
    /// `business`.
    pub(crate) business: Phone,
    /// `user`.
    pub(crate) user: Phone,
    /// `dir`, `entry`, `type` and `category` together.
    pub(crate) kind: EventKind,
    /// `waba`, as a range of the chunk's text.
    waba: (u32, u32),
    /// `id` (empty when absent), as a range of the chunk's text.
    id: (u32, u32),
}

impl Chunk {
    /// The WABA name of one of this chunk's events.
    pub(crate) fn waba(&self, event: &ParsedEvent) -> &str {
        self.text(event.waba)
    }

    /// The message id of the event on line `index` of this chunk (empty when it had none or
    /// the line is not an event).
    pub(crate) fn id(&self, index: u32) -> &str {
        match self.lines.get(index as usize) {
            Some(ParsedLine::Event(event)) => self.text(event.id),
            _ => "",
        }
    }

    /// Why line `index` of this chunk is malformed (`None` if it is not).
    pub(crate) fn error(&self, index: u32) -> Option<&LineError> {
        match self.lines.get(index as usize) {
            Some(ParsedLine::Malformed(error)) => Some(error),
            _ => None,
        }
    }

    fn text(&self, (start, end): (u32, u32)) -> &str {
        self.text.get(start as usize..end as usize).unwrap_or("")
    }

    /// Parses every line of the chunk into `lines`, as the sequential reader always did:
    /// lines end at `\n`, a trailing `\r` is dropped, and a last line without `\n` counts.
    pub(crate) fn parse(&mut self) {
        let Chunk {
            bytes,
            end,
            lines,
            text,
        } = self;
        lines.clear();
        text.clear();
        let input = &bytes[..*end];
        let mut start = 0;
        while start < input.len() {
            let stop = memchr::memchr(b'\n', &input[start..]).map_or(input.len(), |i| start + i);
            lines.push(parse_line(&input[start..stop], text));
            start = stop + 1;
        }
    }
}

/// Parses one line (without its `\n`), copying its strings into `text`.
fn parse_line(line: &[u8], text: &mut String) -> ParsedLine {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return ParsedLine::Blank;
    }
    match jsonl::parse_line(line) {
        Ok(event) => {
            let mut push = |s: &str| {
                let start = text.len() as u32;
                text.push_str(s);
                (start, text.len() as u32)
            };
            let waba = push(&event.waba);
            let id = push(event.id.as_deref().unwrap_or(""));
            ParsedLine::Event(ParsedEvent {
                at: event.at,
                business: event.business,
                user: event.user,
                kind: event.kind,
                waba,
                id,
            })
        }
        Err(error) => ParsedLine::Malformed(error),
    }
}

/// Cuts an input stream into [`Chunk`]s of whole lines.
pub(crate) struct ChunkReader<R> {
    input: R,
    /// How many bytes each read asks for.
    read_size: usize,
    /// The chunk being filled; it starts with the part of a line the previous read cut.
    next: Chunk,
    /// Chunks handed back by the rater, to be filled again.
    pool: Vec<Chunk>,
    /// The input ended (or failed): never read again, as the sequential reader stopped at
    /// the first end of file.
    done: bool,
    /// Bytes read so far (for the progress bar).
    pub(crate) bytes_read: u64,
}

impl<R: Read> ChunkReader<R> {
    /// A reader asking `input` for `read_size` bytes at a time.
    pub(crate) fn new(input: R, read_size: usize) -> Self {
        ChunkReader {
            input,
            read_size: read_size.max(1),
            next: Chunk::default(),
            pool: Vec::new(),
            done: false,
            bytes_read: 0,
        }
    }

    /// Returns a chunk whose lines were consumed, to be reused.
    pub(crate) fn recycle(&mut self, chunk: Chunk) {
        self.pool.push(chunk);
    }

    /// The next chunk of whole lines: `None` at the end of the input. After an error the
    /// input is not read again (and the cut line it left is dropped, as before).
    pub(crate) fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let chunk = &mut self.next;
            // Each read asks for `read_size` bytes: with a buffered reader whose buffer is
            // no larger, the read goes straight into the chunk, with no copy in between.
            if chunk.bytes.len() < chunk.end + self.read_size {
                chunk.bytes.resize(chunk.end + self.read_size, 0);
            }
            let read = match self.input.read(&mut chunk.bytes[chunk.end..]) {
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            if read == 0 {
                self.done = true;
                if chunk.end == 0 {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.next)));
            }
            let start = chunk.end;
            chunk.end += read;
            self.bytes_read += read as u64;
            // Only the bytes just read can hold the chunk's last line end: what came before
            // was the unfinished line of earlier reads.
            let Some(last) = memchr::memrchr(b'\n', &chunk.bytes[start..chunk.end]) else {
                continue;
            };
            let cut = start + last + 1;
            let mut following = self.pool.pop().unwrap_or_default();
            following.end = 0;
            let rest = &chunk.bytes[cut..chunk.end];
            if following.bytes.len() < rest.len() {
                following.bytes.resize(rest.len(), 0);
            }
            following.bytes[..rest.len()].copy_from_slice(rest);
            following.end = rest.len();
            chunk.end = cut;
            return Ok(Some(std::mem::replace(&mut self.next, following)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `size` bytes per read.
    struct Small<'a>(&'a [u8], usize);

    impl Read for Small<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn chunks(input: &[u8], read_size: usize, piece: usize) -> Vec<Vec<u8>> {
        let mut reader = ChunkReader::new(Small(input, piece), read_size);
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk().expect("reads") {
            out.push(chunk.bytes[..chunk.end].to_vec());
            reader.recycle(chunk);
        }
        out
    }

    #[test]
    fn chunks_hold_whole_lines_and_lose_nothing() {
        let input = b"first line\nsecond\n\nthird, longer than a read\nlast without newline";
        for read_size in [1, 2, 5, 7, 16, 1000] {
            for piece in [1, 3, 64] {
                let got = chunks(input, read_size, piece);
                assert_eq!(got.concat(), input, "read {read_size}, piece {piece}");
                let (last, whole) = got.split_last().expect("chunks");
                for chunk in whole {
                    assert_eq!(chunk.last(), Some(&b'\n'));
                }
                assert!(last.ends_with(b"last without newline"));
            }
        }
        assert!(chunks(b"", 4, 4).is_empty());
        assert_eq!(chunks(b"a\n", 4, 4), vec![b"a\n".to_vec()]);
    }

    #[test]
    fn parsing_a_chunk_gives_one_entry_per_line() {
        let mut chunk = Chunk::default();
        let input = b"  \r\n{\"ts\":\"2026-03-01T12:00:00Z\",\"id\":\"m1\",\"waba\":\"w\",\"business\":\"+15550001111\",\"user\":\"+919876543210\",\"dir\":\"out\",\"type\":\"text\"}\r\n{bad\n\r";
        chunk.bytes = input.to_vec();
        chunk.end = input.len();
        chunk.parse();
        assert_eq!(chunk.lines.len(), 4);
        assert_eq!(chunk.lines[0], ParsedLine::Blank);
        let ParsedLine::Event(event) = chunk.lines[1] else {
            panic!("an event: {:?}", chunk.lines[1]);
        };
        assert_eq!(chunk.waba(&event), "w");
        assert_eq!(chunk.id(1), "m1");
        assert!(chunk
            .error(2)
            .is_some_and(|e| e.0.contains("not a valid event")));
        assert_eq!(chunk.error(1), None);
        assert_eq!(chunk.lines[3], ParsedLine::Blank);
    }
}
