//! Server-Sent Events, the framing of every streaming endpoint
//! (`text/event-stream`, WHATWG HTML §9.2): an encoder for what we send and
//! an incremental decoder for what a downstream sends us.
//!
//! The decoder follows the spec's parsing rules rather than assuming our own
//! encoder on the other side: lines end in `\n`, `\r\n` or `\r` (a pair may
//! be split across two reads); `data:` lines join with `\n`; one space after
//! the colon is dropped; `:` lines are comments (keep-alives); a blank line
//! dispatches the event; an event with no `data` is ignored. An event larger
//! than [`MAX_EVENT_BYTES`] is an error, so a runaway peer cannot grow our
//! buffer without bound.

use actix_web::web::Bytes;

/// Largest event (all its lines together) the decoder accepts.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One event as received: its `event:` type (`message` when absent) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    pub data: String,
}

/// Frame one event. `data` may hold newlines: each line becomes its own
/// `data:` field, which the receiving side joins back.
pub fn encode(event: &str, data: &str) -> Bytes {
    debug_assert!(!event.contains(['\r', '\n']), "event names are one line");
    let mut out = String::with_capacity(event.len() + data.len() + 16);
    out.push_str("event: ");
    out.push_str(event);
    out.push('\n');
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("an event exceeded {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    #[error("the event stream is not valid UTF-8")]
    NotUtf8,
}

/// Incremental SSE parser: [`push`](Decoder::push) bytes as they arrive,
/// then take complete events with [`next_event`](Decoder::next_event).
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes not yet split into lines.
    buffer: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs
    /// to the same line ending.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    /// Size of the event being assembled, for [`MAX_EVENT_BYTES`].
    pending: usize,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete event, if the bytes so far hold one.
    pub fn next_event(&mut self) -> Result<Option<Event>, DecodeError> {
        loop {
            if self.after_cr && !self.buffer.is_empty() {
                if self.buffer[0] == b'\n' {
                    self.buffer.remove(0);
                }
                self.after_cr = false;
            }
            let Some(end) = self.buffer.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if self.pending + self.buffer.len() > MAX_EVENT_BYTES {
                    return Err(DecodeError::TooLarge);
                }
                return Ok(None);
            };
            let ending = self.buffer[end];
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = &line[..end];
            if ending == b'\r' {
                if self.buffer.first() == Some(&b'\n') {
                    self.buffer.remove(0);
                } else if self.buffer.is_empty() {
                    self.after_cr = true;
                }
            }
            self.pending += line.len() + 1;
            if self.pending > MAX_EVENT_BYTES {
                return Err(DecodeError::TooLarge);
            }
            let line = std::str::from_utf8(line).map_err(|_| DecodeError::NotUtf8)?;
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Ok(Some(event));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line, ""),
            };
            match field {
                "event" => value.clone_into(&mut self.event),
                "data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                    self.has_data = true;
                }
                // `id` and `retry` steer browser reconnection; we never
                // reconnect a half-streamed answer, so they are ignored.
                _ => {}
            }
        }
    }

    fn dispatch(&mut self) -> Option<Event> {
        self.pending = 0;
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(Event {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut decoder = Decoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(event) = decoder.next_event().unwrap() {
                events.push(event);
            }
        }
        events
    }

    #[test]
    fn round_trips_multiline_data() {
        let bytes = encode("delta", "one\ntwo");
        assert_eq!(&bytes[..], b"event: delta\ndata: one\ndata: two\n\n");
        assert_eq!(
            decode_all(&[&bytes]),
            vec![Event {
                event: "delta".into(),
                data: "one\ntwo".into()
            }]
        );
    }

    #[test]
    fn any_line_ending_and_any_split_point() {
        let text = b"event: a\r\ndata: 1\r\n\r\n: keep-alive\r\rdata:2\n\nevent: b\rdata: x\r\r";
        let whole = decode_all(&[text]);
        assert_eq!(
            whole,
            vec![
                Event {
                    event: "a".into(),
                    data: "1".into()
                },
                Event {
                    event: "message".into(),
                    data: "2".into()
                },
                Event {
                    event: "b".into(),
                    data: "x".into()
                },
            ]
        );
        for split in 0..text.len() {
            let (left, right) = text.split_at(split);
            assert_eq!(decode_all(&[left, right]), whole, "split at {split}");
        }
        let bytewise: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(decode_all(&bytewise), whole);
    }

    #[test]
    fn events_without_data_are_ignored() {
        assert!(decode_all(&[b"event: ping\n\n\n\n"]).is_empty());
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut decoder = Decoder::new();
        decoder.push(b"data: ");
        decoder.push(&vec![b'x'; MAX_EVENT_BYTES + 1]);
        assert_eq!(decoder.next_event(), Err(DecodeError::TooLarge));

        // Many short lines add up too.
        let mut decoder = Decoder::new();
        let line = b"data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
        for _ in 0..(MAX_EVENT_BYTES / line.len() + 1) {
            decoder.push(line);
        }
        assert_eq!(decoder.next_event(), Err(DecodeError::TooLarge));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut decoder = Decoder::new();
        decoder.push(b"data: \xff\n\n");
        assert_eq!(decoder.next_event(), Err(DecodeError::NotUtf8));
    }
}
