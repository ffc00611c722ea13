//! Incremental scanning of gRPC length-prefixed messages.

/// The gRPC message prefix: 1 byte compression flag + 4 bytes length.
const PREFIX_LEN: usize = 5;

/// The first message whose declared length exceeds the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Oversized {
    /// The message's declared length.
    pub(crate) len: usize,
    /// Where its prefix starts in the chunk being scanned (0 when it started
    /// in an earlier chunk): the bytes before it are whole messages that
    /// may still be delivered.
    pub(crate) offset: usize,
}

/// Follows the message boundaries of a gRPC byte stream, chunk by chunk,
/// and reports the first message whose declared length exceeds a limit.
#[derive(Debug, Clone)]
pub(crate) struct FrameScanner {
    limit: usize,
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    remaining: usize,
}

impl FrameScanner {
    pub(crate) fn new(limit: usize) -> Self {
        FrameScanner {
            limit,
            prefix: [0; PREFIX_LEN],
            prefix_len: 0,
            remaining: 0,
        }
    }

    /// Scans the next chunk; `Err` names the first oversized message.
    pub(crate) fn scan(&mut self, chunk: &[u8]) -> Result<(), Oversized> {
        let mut pos = 0;
        while pos < chunk.len() {
            if self.remaining > 0 {
                let skip = self.remaining.min(chunk.len() - pos);
                self.remaining -= skip;
                pos += skip;
                continue;
            }
            // Fast path: a whole prefix in this chunk is read in place.
            if self.prefix_len == 0
                && let Some(prefix) = chunk.get(pos..pos + PREFIX_LEN)
            {
                let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
                if len > self.limit {
                    return Err(Oversized { len, offset: pos });
                }
                pos += PREFIX_LEN;
                self.remaining = len;
                continue;
            }
            // A prefix split across chunks is gathered byte by byte.
            let start = if self.prefix_len == 0 { pos } else { 0 };
            let take = (PREFIX_LEN - self.prefix_len).min(chunk.len() - pos);
            self.prefix[self.prefix_len..self.prefix_len + take]
                .copy_from_slice(&chunk[pos..pos + take]);
            self.prefix_len += take;
            pos += take;
            if self.prefix_len == PREFIX_LEN {
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]) as usize;
                if len > self.limit {
                    return Err(Oversized { len, offset: start });
                }
                self.prefix_len = 0;
                self.remaining = len;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut out = vec![0u8];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len as usize));
        out
    }

    #[test]
    fn accepts_messages_within_the_limit_in_any_chunking() {
        let stream: Vec<u8> = [message(10), message(0), message(100)].concat();
        for chunk_size in [1, 2, 3, 5, 7, 64, stream.len()] {
            let mut scanner = FrameScanner::new(100);
            for chunk in stream.chunks(chunk_size) {
                scanner.scan(chunk).unwrap();
            }
        }
    }

    #[test]
    fn reports_the_oversized_message_even_when_its_prefix_is_split() {
        let stream: Vec<u8> = [message(10), message(101)].concat();
        for chunk_size in [1, 2, 3, 13, stream.len()] {
            let mut scanner = FrameScanner::new(100);
            let result: Result<Vec<()>, usize> = stream
                .chunks(chunk_size)
                .map(|c| scanner.scan(c).map_err(|o| o.len))
                .collect();
            assert_eq!(result, Err(101), "chunk size {chunk_size}");
        }
    }

    #[test]
    fn reports_where_the_oversized_message_starts_in_the_chunk() {
        let stream: Vec<u8> = [message(10), message(3), message(101)].concat();
        assert_eq!(
            FrameScanner::new(100).scan(&stream),
            Err(Oversized {
                len: 101,
                offset: 23
            })
        );
        // Its prefix split across chunks: it started in the earlier chunk.
        let mut scanner = FrameScanner::new(100);
        assert_eq!(scanner.scan(&stream[..25]), Ok(()));
        assert_eq!(
            scanner.scan(&stream[25..]),
            Err(Oversized {
                len: 101,
                offset: 0
            })
        );
    }
}
