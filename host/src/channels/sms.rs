//! Text messages: how many segments a text takes (GSM-7 when every character is in the GSM
//! 03.38 alphabet, else UCS-2), and cutting a text to at most `MAX_SEGMENTS` of them.

/// The most segments one message may take; a longer text is cut with an ellipsis.
pub const MAX_SEGMENTS: usize = 10;

/// GSM 03.38's basic alphabet: one septet each.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
                         ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: an escape and the character, two septets each.
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// How a text is encoded, and so how much one segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// 160 septets alone, 153 per segment of a longer message.
    Gsm7,
    /// 70 UTF-16 units alone, 67 per segment of a longer message.
    Ucs2,
}

impl Encoding {
    fn of(text: &str) -> Encoding {
        if text.chars().all(|c| gsm_cost(c).is_some()) { Encoding::Gsm7 } else { Encoding::Ucs2 }
    }

    /// What one character costs: septets, or UTF-16 units.
    fn cost(self, c: char) -> usize {
        match self {
            Encoding::Gsm7 => gsm_cost(c).unwrap_or(1),
            Encoding::Ucs2 => c.len_utf16(),
        }
    }

    /// (alone, per segment of a longer message)
    fn capacity(self) -> (usize, usize) {
        match self {
            Encoding::Gsm7 => (160, 153),
            Encoding::Ucs2 => (70, 67),
        }
    }

    /// The mark a cut text ends with, in this encoding's alphabet.
    fn ellipsis(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "...",
            Encoding::Ucs2 => "…",
        }
    }
}

fn gsm_cost(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The segments `text` takes (one for an empty text).
pub fn segments(text: &str) -> usize {
    let encoding = Encoding::of(text);
    let size: usize = text.chars().map(|c| encoding.cost(c)).sum();
    let (alone, each) = encoding.capacity();
    if size <= alone { 1 } else { size.div_ceil(each) }
}

/// `text` within `MAX_SEGMENTS` segments: as it is when it fits, else cut and ended with an
/// ellipsis. Answers the text and its segments.
pub fn fit(text: &str) -> (String, usize) {
    let encoding = Encoding::of(text);
    let count = segments(text);
    if count <= MAX_SEGMENTS {
        return (text.to_string(), count);
    }
    let ellipsis = encoding.ellipsis();
    let room = MAX_SEGMENTS * encoding.capacity().1 - ellipsis.chars().map(|c| encoding.cost(c)).sum::<usize>();
    let mut used = 0;
    let mut cut: String = text
        .chars()
        .take_while(|c| {
            used += encoding.cost(*c);
            used <= room
        })
        .collect();
    cut.truncate(cut.trim_end().len());
    cut.push_str(ellipsis);
    let count = segments(&cut);
    (cut, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_texts_take_160_alone_and_153_per_segment() {
        assert_eq!(segments(""), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        // An extension character counts two septets.
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
    }

    #[test]
    fn one_character_outside_gsm_makes_the_text_ucs2() {
        assert_eq!(segments(&"a".repeat(70)), 1);
        assert_eq!(segments(&format!("{}ł", "a".repeat(69))), 1);
        assert_eq!(segments(&format!("{}ł", "a".repeat(70))), 2);
        assert_eq!(segments(&"ł".repeat(134)), 2);
        assert_eq!(segments(&"ł".repeat(135)), 3);
        // Outside the basic plane a character is two UTF-16 units.
        assert_eq!(segments(&"🚨".repeat(35)), 1);
        assert_eq!(segments(&"🚨".repeat(36)), 2);
    }

    #[test]
    fn long_texts_are_cut_to_ten_segments_with_an_ellipsis() {
        let (text, count) = fit(&"a".repeat(5000));
        assert_eq!((count, text.len()), (10, 1530));
        assert!(text.ends_with("..."));
        let (text, count) = fit(&"ł".repeat(5000));
        assert_eq!((count, text.chars().count()), (10, 670));
        assert!(text.ends_with('…'));
        let short = "Usage is in alarm";
        assert_eq!(fit(short), (short.to_string(), 1));
    }
}
