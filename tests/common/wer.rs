//! Word error rate as ../shared/audio/SOURCES.md measures it, so our figures compare
//! with the reference system's.
//!
//! Both texts are lower-cased; hyphens and punctuation (except apostrophes inside words)
//! become spaces; text in brackets or parentheses and the fillers uh, um, uhm, er, ah,
//! hmm, mm and yknow are removed; mr, mrs, dr and st read as mister, missus, doctor and
//! saint. WER is the word-level edit distance over the number of reference words.

const FILLERS: &[&str] = &["uh", "um", "uhm", "er", "ah", "hmm", "mm", "yknow"];

/// The normalised words of a text.
pub fn words(text: &str) -> Vec<String> {
    let mut without_brackets = String::new();
    let mut depth = 0usize;
    for c in text.to_lowercase().chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => without_brackets.push(c),
            _ => {}
        }
    }
    let chars: Vec<char> = without_brackets.chars().collect();
    let cleaned: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let inner_apostrophe = (c == '\'' || c == '’')
                && i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
            if c.is_alphanumeric() {
                c
            } else if inner_apostrophe {
                '\''
            } else {
                ' '
            }
        })
        .collect();
    cleaned
        .split_whitespace()
        .filter(|word| !FILLERS.contains(word))
        .map(|word| match word {
            "mr" => "mister".to_owned(),
            "mrs" => "missus".to_owned(),
            "dr" => "doctor".to_owned(),
            "st" => "saint".to_owned(),
            other => other.to_owned(),
        })
        .collect()
}

/// Word error rate of `hypothesis` against `reference`, from 0 (perfect).
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let reference = words(reference);
    let hypothesis = words(hypothesis);
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut current = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(r != h);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[hypothesis.len()] as f64 / reference.len().max(1) as f64
}

/// The longest run of a phrase (3 to 8 words) repeated back to back: whisper's loops.
pub fn longest_repeat(text: &str) -> usize {
    let words = words(text);
    let mut longest = 1;
    for size in 3..=8 {
        for start in 0..words.len().saturating_sub(size) {
            let mut count = 1;
            while start + (count + 1) * size <= words.len()
                && words[start..start + size] == words[start + count * size..start + (count + 1) * size]
            {
                count += 1;
            }
            longest = longest.max(count);
        }
    }
    longest
}
