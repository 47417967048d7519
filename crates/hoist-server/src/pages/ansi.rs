//! A log line as HTML: every character escaped, ANSI SGR colours and bold as `<span>`s, every
//! other escape sequence dropped. The only markup in the answer is the spans written here.

use std::fmt::Write;

/// The style the SGR sequences so far have set.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    bold: bool,
    /// 0–15: the 8 colours, then their bright forms.
    fg: Option<u8>,
    bg: Option<u8>,
}

impl Style {
    fn apply(&mut self, params: &str) {
        let codes: Vec<u32> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
        let mut codes = codes.into_iter();
        while let Some(code) = codes.next() {
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                22 => self.bold = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((code - 40) as u8),
                100..=107 => self.bg = Some((code - 100 + 8) as u8),
                49 => self.bg = None,
                // 256-colour and true-colour forms: skip their arguments, keep the text plain.
                38 | 48 => match codes.next() {
                    Some(5) => {
                        codes.next();
                    }
                    Some(2) => {
                        codes.next();
                        codes.next();
                        codes.next();
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }

    fn classes(self) -> String {
        let mut classes = Vec::new();
        if self.bold {
            classes.push("b".to_string());
        }
        if let Some(fg) = self.fg {
            classes.push(format!("f{fg}"));
        }
        if let Some(bg) = self.bg {
            classes.push(format!("g{bg}"));
        }
        classes.join(" ")
    }
}

fn escape_into(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c if c.is_control() && c != '\t' => {}
        c => out.push(c),
    }
}

/// The line as HTML.
pub(crate) fn to_html(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut style = Style::default();
    let mut open = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            escape_into(&mut out, c);
            continue;
        }
        if chars.peek() != Some(&'[') {
            // ESC and one more character (or a lone ESC): dropped.
            chars.next();
            continue;
        }
        chars.next();
        let mut params = String::new();
        let mut last = None;
        for c in chars.by_ref() {
            if ('\x40'..='\x7e').contains(&c) {
                last = Some(c);
                break;
            }
            params.push(c);
        }
        if last != Some('m') {
            continue;
        }
        let before = style;
        style.apply(&params);
        if style != before {
            if open {
                out.push_str("</span>");
                open = false;
            }
            let classes = style.classes();
            if !classes.is_empty() {
                let _ = write!(out, "<span class=\"{classes}\">");
                open = true;
            }
        }
    }
    if open {
        out.push_str("</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn markup_in_a_line_is_text() {
        assert_eq!(
            to_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn colours_and_bold_become_spans_and_reset_closes_them() {
        assert_eq!(
            to_html("\x1b[1;31mFAILED\x1b[0m ok"),
            "<span class=\"b f1\">FAILED</span> ok"
        );
        assert_eq!(to_html("\x1b[92mpass"), "<span class=\"f10\">pass</span>");
    }

    #[test]
    fn other_escapes_and_control_characters_are_dropped() {
        assert_eq!(to_html("a\x1b[2Kb\x1b]0;title\x07c\rd"), "ab0;titlecd");
        assert_eq!(to_html("\x1b[31"), "");
    }
}
