//! The byte-order mark at the start of a URL list.
//!
//! Windows editors save lists as UTF-8 with a BOM, or as UTF-16 ("Unicode"
//! in Notepad), which starts with one. Left in, a UTF-8 BOM becomes part
//! of the first URL (an invisible `invalid_url`), and UTF-16 puts a NUL
//! byte between every two characters. A list with a BOM is read as the
//! BOM says; one without is read byte for byte, as before.

use std::io::{self, BufRead, Read};

use encoding_rs::{Decoder, Encoding, UTF_8};

/// How many bytes of UTF-16 are decoded at a time.
const CHUNK: usize = 8 * 1024;

/// Reads through a leading byte-order mark: a UTF-8 one is skipped, a
/// UTF-16 one makes the rest be decoded to UTF-8. Blocks until the first
/// three bytes arrive (or the input ends), so call it where reading may
/// wait.
pub fn strip_or_decode(mut reader: Box<dyn BufRead + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    // A pipe may hand over fewer bytes than a BOM at first: gather them.
    let mut head = Vec::with_capacity(3);
    while head.len() < 3 {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        let take = chunk.len().min(3 - head.len());
        head.extend_from_slice(&chunk[..take]);
        reader.consume(take);
    }
    let (encoding, bom_len) = match Encoding::for_bom(&head) {
        Some(found) => found,
        None => (UTF_8, 0),
    };
    let rest = io::Cursor::new(head.split_off(bom_len)).chain(reader);
    if encoding == UTF_8 {
        Ok(Box::new(io::BufReader::new(rest)))
    } else {
        let decoder = encoding.new_decoder_without_bom_handling();
        Ok(Box::new(io::BufReader::new(Transcode::new(rest, decoder))))
    }
}

/// Decodes a byte stream to UTF-8 as it is read; malformed input becomes
/// U+FFFD, as everywhere else text is decoded.
struct Transcode<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Bytes of `output` already handed out.
    taken: usize,
    ended: bool,
}

impl<R: Read> Transcode<R> {
    fn new(inner: R, decoder: Decoder) -> Self {
        Transcode {
            inner,
            decoder,
            input: vec![0; CHUNK],
            output: Vec::new(),
            taken: 0,
            ended: false,
        }
    }

    /// Refills `output` from the next chunk of input; false at the end.
    fn refill(&mut self) -> io::Result<bool> {
        while self.taken == self.output.len() {
            if self.ended {
                return Ok(false);
            }
            let n = loop {
                match self.inner.read(&mut self.input) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.ended = n == 0;
            let room = self.decoder.max_utf8_buffer_length(n).unwrap_or(4 * n + 16);
            self.output.clear();
            self.output.resize(room, 0);
            self.taken = 0;
            let (_, read, written, _) =
                self.decoder
                    .decode_to_utf8(&self.input[..n], &mut self.output, self.ended);
            debug_assert_eq!(read, n, "the buffer was sized for all of it");
            self.output.truncate(written);
        }
        Ok(true)
    }
}

impl<R: Read> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.refill()? {
            return Ok(0);
        }
        let available = &self.output[self.taken..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.taken += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: Vec<u8>) -> Vec<u8> {
        let reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(bytes));
        let mut out = Vec::new();
        strip_or_decode(reader)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn boms_are_read_as_they_say() {
        let text = "https://a.test/\nhttps://ü.test/?q=é\n";
        assert_eq!(read_all(text.as_bytes().to_vec()), text.as_bytes());
        let with_bom = [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat();
        assert_eq!(read_all(with_bom), text.as_bytes());
        let mut le = vec![0xff, 0xfe];
        let mut be = vec![0xfe, 0xff];
        for unit in text.encode_utf16() {
            le.extend(unit.to_le_bytes());
            be.extend(unit.to_be_bytes());
        }
        assert_eq!(read_all(le), text.as_bytes());
        assert_eq!(read_all(be), text.as_bytes());
        assert_eq!(read_all(Vec::new()), b"");
    }

    /// A reader that hands over one byte per read, as a slow pipe can.
    struct Trickle(io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn a_bom_split_across_reads_is_found() {
        let text = "https://a.test/\n";
        let mut le = vec![0xff, 0xfe];
        for unit in text.encode_utf16() {
            le.extend(unit.to_le_bytes());
        }
        let utf8 = [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat();
        for bytes in [le, utf8, text.as_bytes().to_vec(), b"ab".to_vec()] {
            let expected = if bytes == b"ab" {
                b"ab".to_vec()
            } else {
                text.as_bytes().to_vec()
            };
            // A BufReader of capacity 1 sees one byte per fill_buf.
            let slow = io::BufReader::with_capacity(1, Trickle(io::Cursor::new(bytes)));
            let mut out = Vec::new();
            strip_or_decode(Box::new(slow))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn long_utf16_input_is_decoded_across_chunks() {
        let text: String = (0..5000)
            .map(|n| format!("https://h{n}.test/ü\n"))
            .collect();
        let mut le = vec![0xff, 0xfe];
        for unit in text.encode_utf16() {
            le.extend(unit.to_le_bytes());
        }
        assert_eq!(read_all(le), text.as_bytes());
    }
}
