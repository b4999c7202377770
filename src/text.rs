//! Bytes from the outside world (command lines, paths) as text that SQLite
//! can search and a terminal can show, without losing the original bytes.

/// `text` is always valid UTF-8 without NUL; `raw` holds the exact bytes
/// whenever `text` differs from them (invalid UTF-8 or NUL bytes), so nothing
/// is lost and the common case stores nothing twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredText {
    pub text: String,
    pub raw: Option<Vec<u8>>,
}

impl StoredText {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        if !bytes.contains(&0) {
            match String::from_utf8(bytes) {
                Ok(text) => return StoredText { text, raw: None },
                Err(err) => return Self::lossy(err.into_bytes()),
            }
        }
        Self::lossy(bytes)
    }

    fn lossy(bytes: Vec<u8>) -> Self {
        let text = String::from_utf8_lossy(&bytes).replace('\0', "\u{FFFD}");
        StoredText {
            text,
            raw: Some(bytes),
        }
    }

    /// The original bytes.
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        self.raw.as_deref().unwrap_or(self.text.as_bytes())
    }
}

/// Lower-case hex digits.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The bytes of hex digits (as [`hex`] writes them); None if they are not.
pub fn unhex(digits: &str) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhex_reads_back_what_hex_wrote() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&bytes)).as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn valid_utf8_is_stored_once() {
        let t = StoredText::from_bytes("échø 'a' \"b\"\n✓".as_bytes().to_vec());
        assert_eq!(t.text, "échø 'a' \"b\"\n✓");
        assert_eq!(t.raw, None);
    }

    #[test]
    fn invalid_utf8_keeps_the_bytes() {
        let bytes = b"echo \xff\xfe end".to_vec();
        let t = StoredText::from_bytes(bytes.clone());
        assert_eq!(t.text, "echo \u{FFFD}\u{FFFD} end");
        assert_eq!(t.bytes(), &bytes[..]);
    }

    #[test]
    fn nul_bytes_keep_the_bytes() {
        let bytes = b"a\0b".to_vec();
        let t = StoredText::from_bytes(bytes.clone());
        assert_eq!(t.text, "a\u{FFFD}b");
        assert_eq!(t.bytes(), &bytes[..]);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the bytes, the text is searchable (UTF-8, no NUL) and the
        /// exact bytes come back.
        #[test]
        fn any_bytes_are_kept_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let stored = StoredText::from_bytes(bytes.clone());
            prop_assert!(!stored.text.contains('\0'));
            prop_assert_eq!(stored.bytes(), &bytes[..]);
        }
    }
}
