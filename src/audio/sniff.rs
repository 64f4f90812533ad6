//! Names what the first bytes of a file look like, for files that are not audio.
//!
//! Input: the head of a file (a few kilobytes). Output: [`Sniffed`]: a short description
//! for the "not audio" message ("an image (PNG)", "plain text"), the name of a media
//! container that a decoder should try, or nothing known. Pure; reads no file itself.

/// What the head of a file looks like.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// Certainly not audio or video; the text completes "looks like ...".
    NotMedia(String),
    /// An audio or video container, by its usual extension (`"wav"`, `"mp4"`, `"avi"`).
    Media(&'static str),
    /// Nothing we recognise.
    Unknown,
}

pub fn sniff(head: &[u8]) -> Sniffed {
    if let Some(kind) = infer::get(head) {
        let ext = kind.extension();
        let upper = ext.to_ascii_uppercase();
        let found = match kind.matcher_type() {
            infer::MatcherType::Audio | infer::MatcherType::Video => return Sniffed::Media(ext),
            infer::MatcherType::Custom => return Sniffed::Unknown,
            infer::MatcherType::Image => format!("an image ({upper})"),
            // infer files PDF, RTF and PostScript under archives.
            infer::MatcherType::Doc => format!("a document ({upper})"),
            infer::MatcherType::Archive if matches!(ext, "pdf" | "rtf" | "ps") => format!("a document ({upper})"),
            infer::MatcherType::Archive => format!("an archive ({upper})"),
            infer::MatcherType::Book => format!("an e-book ({upper})"),
            infer::MatcherType::Font => format!("a font ({upper})"),
            infer::MatcherType::App => format!("a program ({upper})"),
            infer::MatcherType::Text => format!("text ({upper})"),
        };
        return Sniffed::NotMedia(found);
    }
    if looks_like_text(head) { Sniffed::NotMedia("plain text".to_owned()) } else { Sniffed::Unknown }
}

/// UTF-8 (so ASCII too) with no control characters but whitespace. Every audio container
/// starts with binary fields (sizes, versions, sync words), so none passes.
fn looks_like_text(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // The head may end inside a multi-byte character.
        Err(error) if error.error_len().is_none() => match std::str::from_utf8(&head[..error.valid_up_to()]) {
            Ok(text) => text,
            Err(_) => return false,
        },
        Err(_) => return false,
    };
    !text.is_empty() && text.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_common_non_audio_files() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0 \0\0\0 \x08\x02\0\0\0";
        assert_eq!(sniff(png), Sniffed::NotMedia("an image (PNG)".to_owned()));
        assert_eq!(sniff(b"%PDF-1.4\n1 0 obj"), Sniffed::NotMedia("a document (PDF)".to_owned()));
        assert_eq!(sniff(b"PK\x03\x04\x14\0\0\0\x08\0"), Sniffed::NotMedia("an archive (ZIP)".to_owned()));
        assert_eq!(
            sniff("Meeting notes: caf\u{e9}\n\tand more".as_bytes()),
            Sniffed::NotMedia("plain text".to_owned())
        );
    }

    #[test]
    fn text_cut_inside_a_character_is_still_text() {
        let text = "na\u{ef}ve".as_bytes();
        assert_eq!(sniff(&text[..3]), Sniffed::NotMedia("plain text".to_owned()));
    }

    #[test]
    fn media_and_binary_are_left_to_the_decoder() {
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0"), Sniffed::Media("wav"));
        assert_eq!(sniff(b"\0\x01\x02\x03\xff\xfe binary"), Sniffed::Unknown);
        assert_eq!(sniff(b""), Sniffed::Unknown);
    }
}
