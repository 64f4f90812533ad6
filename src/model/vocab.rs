//! CTranslate2's vocabulary.txt to the raw token bytes a ggml file lists.
//!
//! vocabulary.txt has one token per line, the line number being the token id, written in
//! GPT-2's byte-level alphabet: every byte is shown as a printable character
//! (`bytes_to_unicode` in GPT-2's encoder.py). We undo that mapping. Empty lines are real
//! (empty) tokens and are kept. Only ids up to `<|endoftext|>` go into the file; whisper.cpp
//! names the special tokens after it itself.

use std::path::Path;

use crate::errors::ModelError;

/// `<|endoftext|>`'s id in the English-only vocabulary; multilingual ones have it one later.
const END_OF_TEXT_EN: usize = 50256;

/// The character GPT-2's byte-level alphabet shows for a byte.
///
/// Printable Latin-1 bytes stand for themselves; the 68 others (controls, space, 0x7f-0xa0,
/// the soft hyphen) become U+0100 onwards, in ascending byte order.
fn byte_to_char(byte: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
    if printable(byte) {
        return char::from(byte);
    }
    let rank = (0..byte).filter(|&b| !printable(b)).count() as u32;
    char::from_u32(256 + rank).expect("U+0100..U+0143 are characters")
}

/// The inverse of [`byte_to_char`], indexed by code point (all of them are below 324).
fn char_to_byte_table() -> [Option<u8>; 324] {
    let mut table = [None; 324];
    for byte in 0..=255u8 {
        table[byte_to_char(byte) as usize] = Some(byte);
    }
    table
}

/// Tokens 0 up to and including `<|endoftext|>`, as bytes.
///
/// `n_vocab` is the number of rows of the model's token embedding; the file must list
/// exactly that many tokens, with `<|endoftext|>` where whisper.cpp expects it.
pub fn decode(text: &[u8], path: &Path, n_vocab: usize) -> Result<Vec<Vec<u8>>, ModelError> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if lines.len() != n_vocab {
        return Err(ModelError::VocabularySize { path: path.to_owned(), found: lines.len(), expected: n_vocab });
    }
    let multilingual = n_vocab > 51864;
    let expected = END_OF_TEXT_EN + usize::from(multilingual);
    let found = lines.iter().position(|line| *line == b"<|endoftext|>");
    if found != Some(expected) {
        return Err(ModelError::VocabularyEndOfText { path: path.to_owned(), found, expected });
    }

    let table = char_to_byte_table();
    let bad_token = |line: usize, raw: &[u8]| ModelError::VocabularyToken {
        path: path.to_owned(),
        line: line + 1,
        found: String::from_utf8_lossy(raw).into_owned(),
    };
    lines[..=expected]
        .iter()
        .enumerate()
        .map(|(id, raw)| {
            let line = std::str::from_utf8(raw).map_err(|_| bad_token(id, raw))?;
            line.chars().map(|c| table.get(c as usize).copied().flatten().ok_or_else(|| bad_token(id, raw))).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_256_bytes_round_trip() {
        let table = char_to_byte_table();
        let mut seen = std::collections::HashSet::new();
        for byte in 0..=255u8 {
            let c = byte_to_char(byte);
            assert!(seen.insert(c), "{byte} shares its character");
            assert_eq!(table[c as usize], Some(byte));
        }
        assert_eq!(table.iter().flatten().count(), 256);
    }

    #[test]
    fn the_alphabet_matches_gpt2() {
        // Spot values from GPT-2's bytes_to_unicode().
        assert_eq!(byte_to_char(b'A'), 'A');
        assert_eq!(byte_to_char(0), '\u{100}');
        assert_eq!(byte_to_char(b' '), '\u{120}'); // "Ġ", the leading space of most tokens
        assert_eq!(byte_to_char(b'\n'), '\u{10a}'); // "Ċ"
        assert_eq!(byte_to_char(0x7f), '\u{121}');
        assert_eq!(byte_to_char(0xad), '\u{143}'); // the last of the 68
        assert_eq!(byte_to_char(0xe9), 'é');
    }

    fn vocabulary(n: usize, eot: usize) -> Vec<u8> {
        let mut text = Vec::new();
        for id in 0..n {
            let line = match id {
                0 => "Ġhello".to_owned(),
                1 => "Ã©".to_owned(), // the two UTF-8 bytes of "é"
                2 => String::new(),
                _ if id == eot => "<|endoftext|>".to_owned(),
                _ => format!("t{id}"),
            };
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        text
    }

    #[test]
    fn decodes_tokens_up_to_end_of_text() {
        let tokens = decode(&vocabulary(51864, 50256), Path::new("v.txt"), 51864).unwrap();
        assert_eq!(tokens.len(), 50257);
        assert_eq!(tokens[0], b" hello");
        assert_eq!(tokens[1], "é".as_bytes());
        assert_eq!(tokens[2], b"", "empty lines are tokens too");
        assert_eq!(tokens[50256], b"<|endoftext|>");
        let tokens = decode(&vocabulary(51865, 50257), Path::new("v.txt"), 51865).unwrap();
        assert_eq!(tokens.len(), 50258);
    }

    #[test]
    fn refuses_a_vocabulary_of_another_size_or_layout() {
        let error = decode(&vocabulary(51864, 50256), Path::new("v.txt"), 51865).unwrap_err();
        assert_eq!(
            error.to_string(),
            "v.txt has 51864 tokens but the model has 51865; vocabulary.txt and model.bin must come from the same wheel"
        );
        let error = decode(&vocabulary(51865, 50256), Path::new("v.txt"), 51865).unwrap_err();
        assert!(matches!(error, ModelError::VocabularyEndOfText { found: Some(50256), expected: 50257, .. }));
    }

    #[test]
    fn refuses_characters_outside_the_alphabet() {
        // A raw tab: the alphabet writes byte 9 as U+0109.
        let text = String::from_utf8(vocabulary(51864, 50256)).unwrap().replacen("\nt3\n", "\nt\t3\n", 1);
        let error = decode(text.as_bytes(), Path::new("v.txt"), 51864).unwrap_err();
        assert_eq!(
            error.to_string(),
            "v.txt line 4 holds \"t\\t3\", which is not a GPT-2 byte-level token; download the wheel again"
        );
    }
}
