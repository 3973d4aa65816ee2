//! Splits master-file text into entries of tokens, tracking the line of every token.
//!
//! hickory's own lexer drops line numbers and decodes `\DDD` wrongly, so this
//! one is ours. It implements RFC 1035 §5.1: `;` comments, `(`/`)` joining
//! lines, `"`-quoted character strings, and `\X` / `\DDD` escapes.

/// One token of an entry.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// The text as written, escapes left in place (for names, which are
    /// parsed label by label later). Empty-quoted strings give "".
    pub raw: String,
    /// The text with escapes decoded (for character strings).
    pub bytes: Vec<u8>,
    /// Written between double quotes.
    pub quoted: bool,
    /// 1-based line the token starts on.
    pub line: u32,
}

/// One logical entry: a directive or a resource record, possibly spanning
/// several physical lines through parentheses.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Line of the first token.
    pub line: u32,
    /// The entry's first line starts with a space or tab, so the owner is
    /// inherited from the previous record (RFC 1035 §5.1).
    pub blank_start: bool,
    pub tokens: Vec<Token>,
}

/// A syntax error found while splitting; the entry it occurred in is dropped.
#[derive(Debug)]
pub(crate) struct LexError {
    pub line: u32,
    pub reason: String,
}

/// Splits `text` into entries. Every entry with a syntax error is replaced
/// by its first error, and splitting carries on with the next entry, so one
/// bad line does not hide problems further down.
pub(crate) fn split_entries(text: &str) -> Vec<Result<Entry, LexError>> {
    Lexer {
        src: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
    }
    .run()
}

struct Lexer<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: u32,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn run(mut self) -> Vec<Result<Entry, LexError>> {
        let mut out = Vec::new();
        while self.pos < self.src.len() {
            if let Some(result) = self.entry() {
                out.push(result);
            }
        }
        out
    }

    /// Reads one entry starting at the beginning of a line. Returns `None`
    /// for blank and comment-only lines.
    fn entry(&mut self) -> Option<Result<Entry, LexError>> {
        let blank_start = matches!(self.peek(), Some(b' ' | b'\t'));
        let mut tokens = Vec::new();
        // The first error in this entry; later ones are likely consequences.
        let mut error: Option<LexError> = None;
        // Line of the currently open '(' if any.
        let mut open_paren: Option<u32> = None;

        loop {
            let Some(c) = self.peek() else {
                // End of input ends the entry; an open '(' is an error.
                if let Some(pline) = open_paren {
                    error.get_or_insert(LexError {
                        line: pline,
                        reason: "unclosed '(' at end of file".into(),
                    });
                }
                break;
            };
            match c {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    if open_paren.is_none() {
                        break;
                    }
                }
                b';' => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.pos += 1;
                    }
                }
                b'(' => {
                    self.pos += 1;
                    if open_paren.is_some() {
                        error.get_or_insert(LexError {
                            line: self.line,
                            reason: "nested '(' is not allowed".into(),
                        });
                    } else {
                        open_paren = Some(self.line);
                    }
                }
                b')' => {
                    self.pos += 1;
                    if open_paren.take().is_none() {
                        error.get_or_insert(LexError {
                            line: self.line,
                            reason: "')' without a matching '('".into(),
                        });
                    }
                }
                b'"' => match self.quoted() {
                    Ok(tok) => tokens.push(tok),
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                },
                _ => match self.unquoted() {
                    Ok(tok) => tokens.push(tok),
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                },
            }
        }

        if let Some(e) = error {
            return Some(Err(e));
        }
        let line = tokens.first()?.line;
        Some(Ok(Entry {
            line,
            blank_start,
            tokens,
        }))
    }

    /// Reads a `"..."` string. A raw newline inside quotes ends it with an
    /// error rather than swallowing the rest of the file: a forgotten quote
    /// is far more common than an intended multi-line string.
    fn quoted(&mut self) -> Result<Token, LexError> {
        let line = self.line;
        self.pos += 1; // opening quote
        let start = self.pos;
        let mut bytes = Vec::new();
        self.quoted_body(line, &mut bytes)?;
        // Without the closing quote.
        let raw = self.text.get(start..self.pos - 1).unwrap_or("").to_string();
        Ok(Token {
            raw,
            bytes,
            quoted: true,
            line,
        })
    }

    /// Reads the inside of a quoted string (the opening quote already
    /// read) into `bytes`, escapes decoded, and the closing quote.
    fn quoted_body(&mut self, line: u32, bytes: &mut Vec<u8>) -> Result<(), LexError> {
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    return Err(LexError {
                        line,
                        reason: "unterminated quoted string".into(),
                    });
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => bytes.push(self.escape()?),
                Some(c) => {
                    bytes.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// Reads a token delimited by whitespace, `;`, `(`, `)` or end of line.
    fn unquoted(&mut self) -> Result<Token, LexError> {
        let line = self.line;
        let start = self.pos;
        let mut bytes = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' => break,
                b'\\' => bytes.push(self.escape()?),
                // `key="a b"` (RFC 9460 SvcParams): a quoted value inside a
                // token keeps its blanks; the quotes stay in `raw`.
                b'"' if self.pos > start && self.src[self.pos - 1] == b'=' => {
                    self.pos += 1;
                    self.quoted_body(line, &mut bytes)?;
                }
                _ => {
                    bytes.push(c);
                    self.pos += 1;
                }
            }
        }
        // Token boundaries are ASCII bytes, so this slice is on char
        // boundaries; `get` keeps that assumption from ever panicking.
        let raw = self.text.get(start..self.pos).unwrap_or("").to_string();
        Ok(Token {
            raw,
            bytes,
            quoted: false,
            line,
        })
    }

    /// Decodes `\X` or `\DDD` (decimal, RFC 1035 §5.1) at `pos`.
    fn escape(&mut self) -> Result<u8, LexError> {
        let line = self.line;
        self.pos += 1; // backslash
        let Some(c) = self.peek() else {
            return Err(LexError {
                line,
                reason: "'\\' at end of file".into(),
            });
        };
        if !c.is_ascii_digit() {
            if c == b'\n' {
                // An escaped newline is still a new line for error positions.
                self.line += 1;
            }
            self.pos += 1;
            return Ok(c);
        }
        let digits = self.src.get(self.pos..self.pos + 3).unwrap_or(&[]);
        if digits.len() != 3 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(LexError {
                line,
                reason: "escape '\\DDD' needs exactly three decimal digits".into(),
            });
        }
        let value = u32::from(digits[0] - b'0') * 100
            + u32::from(digits[1] - b'0') * 10
            + u32::from(digits[2] - b'0');
        self.pos += 3;
        u8::try_from(value).map_err(|_| LexError {
            line,
            reason: format!("escape '\\{value:03}' is larger than 255"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Vec<String>> {
        split_entries(text)
            .into_iter()
            .map(|e| e.unwrap().tokens.into_iter().map(|t| t.raw).collect())
            .collect()
    }

    #[test]
    fn splits_lines_comments_and_parentheses() {
        let t = toks("a A 1.2.3.4 ; c\n\n; only comment\n@ SOA x y (1\n 2 ; two\n 3 4 5 )\n");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0], ["a", "A", "1.2.3.4"]);
        assert_eq!(t[1], ["@", "SOA", "x", "y", "1", "2", "3", "4", "5"]);
    }

    #[test]
    fn decodes_escapes_in_decimal() {
        let e = split_entries(r#"x TXT "a\"b\065;c" d\ e"#);
        let e = e[0].as_ref().unwrap();
        assert_eq!(e.tokens[2].bytes, b"a\"bA;c");
        assert!(e.tokens[2].quoted);
        assert_eq!(e.tokens[3].bytes, b"d e");
        assert_eq!(e.tokens[3].raw, r"d\ e");
    }

    #[test]
    fn errors_carry_lines_and_do_not_stop_splitting() {
        let e = split_entries("a TXT \"open\nb ( x\n y )\nc )\nd A 1\ne \\300\n");
        let lines: Vec<_> = e
            .iter()
            .map(|r| match r {
                Ok(e) => (e.line, String::new()),
                Err(e) => (e.line, e.reason.clone()),
            })
            .collect();
        assert_eq!(lines[0].0, 1);
        assert!(lines[0].1.contains("unterminated"));
        assert_eq!(lines[1], (2, String::new()));
        assert_eq!(lines[2].0, 4);
        assert!(lines[2].1.contains("')'"));
        assert_eq!(lines[3], (5, String::new()));
        assert!(lines[4].1.contains("255"));
    }

    #[test]
    fn unclosed_paren_reported_at_its_line() {
        let e = split_entries("a A 1\nb SOA (x\ny\n");
        let err = e[1].as_ref().unwrap_err();
        assert_eq!(err.line, 2);
    }
}
