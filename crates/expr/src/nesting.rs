//! A guard that refuses programs so deeply nested that jaq could exhaust the thread's stack.
//!
//! jaq's lexer, parser, compiler and interpreter all recurse over the program's syntax tree,
//! and a stack overflow aborts the whole process: no error, no unwinding. A hostile or
//! generated expression such as ten thousand `[` would take the server down at config load,
//! and a merely large one could do so later, on a worker thread, at run time. So before jaq
//! sees a program, this module estimates the depth of its syntax tree with a flat scan (no
//! recursion, memory bounded by the limit) and refuses anything deeper than [`MAX_NESTING`].
//!
//! The estimate counts what makes jaq recurse, not only brackets: every bracket and string
//! interpolation; every binary operator in a chain (`a | b | c` and `1, 2, 3` are trees as
//! deep as they are long); prefix keywords (`if`, `try`, `reduce`, `def`, unary `-`, …);
//! path steps (`.a.b.c`); and every field of an object constructor and part of an
//! interpolated string, which jaq evaluates as a chain. Siblings that do not stack (the
//! arguments of `f(a; b)`, the fields' values of `{a: x, b: y}`) count once, by the
//! deepest. The result is an upper bound, a little pessimistic on long flat pipelines.
//!
//! The limit comes from measurement. In a debug build each level costs up to about 11 KiB
//! of stack while compiling and 6 KiB while evaluating; an optimised build needs about
//! 3.5 KiB and 1 KiB. At 128 levels the worst construct measured (nested objects, compiled
//! in a debug build) peaks near 1.4 MiB, inside the 2 MiB that Rust and tokio give a thread
//! by default with room left for the caller's own frames. Real expressions are rarely deeper
//! than a few dozen levels; a wide object can be split as `{…} + {…}`, since the halves are
//! siblings.

use crate::CompileError;

/// Deepest syntax tree accepted in a program, as estimated by this module.
pub const MAX_NESTING: usize = 128;

/// Refuses `source` if its estimated nesting exceeds [`MAX_NESTING`].
pub(crate) fn check(source: &str) -> Result<(), CompileError> {
    Scanner::new(source, MAX_NESTING).run().map(|_depth| ())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// the whole program
    Top,
    /// `(`, `[`, or `{` (whose top-level commas separate fields, not values)
    Paren,
    Bracket,
    Brace,
    /// `\(` inside a string; closing it resumes the string
    Interp,
}

struct Block {
    kind: Kind,
    /// offset of the opening delimiter, for the error
    open: usize,
    /// fields of an object constructor seen so far
    fields: usize,
    /// deepest completed sibling (between `;`, or between fields of an object)
    best: usize,
    /// chained operators in the current sibling
    chain: usize,
    /// deepest nested block in the current sibling
    child: usize,
    /// whether a `def` appeared: the term after `def f: body;` is nested under it
    defines: bool,
}

impl Block {
    fn new(kind: Kind, open: usize) -> Self {
        Block {
            kind,
            open,
            fields: 0,
            best: 0,
            chain: 0,
            child: 0,
            defines: false,
        }
    }

    fn end_sibling(&mut self) {
        self.best = self.best.max(self.chain + self.child);
        self.chain = 0;
        self.child = 0;
    }

    fn depth(&self) -> usize {
        self.fields + self.best.max(self.chain + self.child)
    }
}

struct Scanner<'a> {
    /// depth beyond which scanning stops with an error
    max: usize,
    source: &'a str,
    bytes: &'a [u8],
    pos: usize,
    in_string: bool,
    /// whether the last token ended a term, so that a `[` indexes it (`f[0]`, a path
    /// step) rather than starting an array
    after_term: bool,
    /// the whole program
    root: Block,
    /// open blocks, innermost last
    stack: Vec<Block>,
}

/// First characters of operators; the same set minus `-` continues one (`|=`, `//`, `!=`).
const OPERATOR_START: &[u8] = b"|=!<>+-*/%";

/// Words that start a nested construct or chain two terms.
const NESTING_WORDS: [&str; 9] = [
    "and", "or", "if", "elif", "try", "reduce", "foreach", "def", "label",
];

impl<'a> Scanner<'a> {
    fn new(source: &'a str, max: usize) -> Self {
        Scanner {
            max,
            source,
            bytes: source.as_bytes(),
            pos: 0,
            in_string: false,
            after_term: false,
            root: Block::new(Kind::Top, 0),
            stack: Vec::new(),
        }
    }

    /// Scans the whole source and returns its estimated depth.
    fn run(mut self) -> Result<usize, CompileError> {
        while let Some(&byte) = self.bytes.get(self.pos) {
            if self.in_string {
                self.string_byte(byte)?;
            } else {
                self.code_byte(byte)?;
            }
        }
        // Unclosed blocks are jaq's to report; they still count towards the depth.
        while !self.stack.is_empty() {
            self.close()?;
        }
        let depth = self.root.depth();
        self.limit(depth, self.bytes.len())?;
        Ok(depth)
    }

    fn string_byte(&mut self, byte: u8) -> Result<(), CompileError> {
        match byte {
            b'\\' if self.bytes.get(self.pos + 1) == Some(&b'(') => {
                self.chain(self.pos)?;
                self.open(Kind::Interp)?;
                self.in_string = false;
                self.pos += 2;
            }
            b'\\' => self.pos += 2,
            b'"' => {
                self.in_string = false;
                self.after_term = true;
                self.pos += 1;
            }
            _ => self.pos += 1,
        }
        Ok(())
    }

    fn code_byte(&mut self, byte: u8) -> Result<(), CompileError> {
        let at = self.pos;
        let mut ends_term = false;
        match byte {
            _ if byte.is_ascii_whitespace() => {
                self.pos += 1;
                return Ok(());
            }
            b'#' => {
                self.comment();
                return Ok(());
            }
            b'"' => {
                self.in_string = true;
                self.pos += 1;
            }
            b'(' => {
                self.open(Kind::Paren)?;
                self.pos += 1;
            }
            b'[' => {
                if self.after_term {
                    self.chain(at)?;
                }
                self.open(Kind::Bracket)?;
                self.pos += 1;
            }
            b'{' => {
                self.open(Kind::Brace)?;
                self.pos += 1;
            }
            b')' | b']' | b'}' => {
                // A closer with nothing open is jaq's syntax error to report.
                self.close()?;
                self.pos += 1;
                ends_term = !self.in_string;
            }
            b',' => {
                let top = self.top_mut();
                if top.kind == Kind::Brace {
                    top.end_sibling();
                    top.fields += 1;
                    let depth = top.depth();
                    self.limit(depth, at)?;
                } else {
                    self.chain(at)?;
                }
                self.pos += 1;
            }
            b';' => {
                let top = self.top_mut();
                top.end_sibling();
                // Not cumulative: consecutive definitions are one flat list in jaq.
                top.chain = usize::from(top.defines);
                self.pos += 1;
            }
            b'.' if self.bytes.get(at + 1) == Some(&b'.') => {
                self.pos += 2;
                ends_term = true;
            }
            b'.' => {
                self.pos += 1;
                let next = self.bytes.get(self.pos).copied();
                // A bare `.` nests nothing; `.key` and `."key"` are path steps.
                if next.is_some_and(|b| is_ident(b) || b == b'"') {
                    self.chain(at)?;
                }
                self.skip_while(is_ident);
                ends_term = true;
            }
            b'?' => {
                self.pos += 1;
                ends_term = true;
            }
            b'$' | b'@' => {
                self.pos += 1;
                self.skip_while(is_ident);
                ends_term = true;
            }
            b'0'..=b'9' => {
                self.number();
                ends_term = true;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                self.skip_while(is_ident);
                // A module path (`mod::name`) is one word.
                if self.source[self.pos..].starts_with("::") {
                    self.pos += 2;
                    self.skip_while(|b| is_ident(b) || b == b'$' || b == b'@');
                }
                let word = &self.source[at..self.pos];
                if NESTING_WORDS.contains(&word) {
                    self.top_mut().defines |= word == "def";
                    self.chain(at)?;
                } else {
                    ends_term = true;
                }
            }
            b if OPERATOR_START.contains(&b) => {
                self.chain(at)?;
                self.pos += 1;
                self.skip_while(|b| b != b'-' && OPERATOR_START.contains(&b));
            }
            _ => self.pos += 1,
        }
        self.after_term = ends_term;
        Ok(())
    }

    /// Skips a comment the way jaq does: to the end of the line, and on through every line
    /// that ends in an odd number of backslashes.
    fn comment(&mut self) {
        loop {
            let rest = &self.source[self.pos..];
            let (line, next) = match rest.find('\n') {
                Some(nl) => (&rest[..nl], self.pos + nl + 1),
                None => (rest, self.source.len()),
            };
            self.pos = next;
            let line = line.strip_suffix('\r').unwrap_or(line);
            let backslashes = line.bytes().rev().take_while(|&b| b == b'\\').count();
            if backslashes % 2 == 0 || self.pos >= self.source.len() {
                break;
            }
        }
    }

    /// Skips a number as jaq lexes it, so the `-` of `1e-5` is not taken for an operator.
    fn number(&mut self) {
        self.skip_while(|b| b.is_ascii_digit());
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            self.skip_while(|b| b.is_ascii_digit());
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.skip_while(|b| b.is_ascii_digit());
        }
    }

    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.bytes.get(self.pos).is_some_and(|&b| keep(b)) {
            self.pos += 1;
        }
    }

    fn open(&mut self, kind: Kind) -> Result<(), CompileError> {
        self.stack.push(Block::new(kind, self.pos));
        self.limit(self.stack.len(), self.pos)
    }

    fn close(&mut self) -> Result<(), CompileError> {
        let Some(block) = self.stack.pop() else {
            return Ok(());
        };
        let depth = 1 + block.depth();
        self.limit(depth, block.open)?;
        if block.kind == Kind::Interp {
            self.in_string = true;
        }
        let parent = self.top_mut();
        parent.child = parent.child.max(depth);
        let parent = parent.depth();
        self.limit(parent, block.open)
    }

    /// Counts one link of a chain in the current sibling.
    fn chain(&mut self, at: usize) -> Result<(), CompileError> {
        let top = self.top_mut();
        top.chain += 1;
        let depth = top.depth();
        self.limit(depth, at)
    }

    fn limit(&self, depth: usize, at: usize) -> Result<(), CompileError> {
        if depth <= self.max {
            return Ok(());
        }
        Err(CompileError::new(
            format!(
                "the expression is nested too deeply (more than {MAX_NESTING} levels, \
                 counting brackets, each link of a `|`, `,` or operator chain, and each \
                 field of an object); split it into smaller expressions"
            ),
            Some(at),
        ))
    }

    fn top_mut(&mut self) -> &mut Block {
        self.stack.last_mut().unwrap_or(&mut self.root)
    }
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(source: &str) -> usize {
        Scanner::new(source, usize::MAX).run().unwrap()
    }

    #[test]
    fn brackets_nest() {
        assert_eq!(depth("1"), 0);
        assert_eq!(depth("[1]"), 1);
        assert_eq!(depth("[[1]] , [1]"), 3);
        assert_eq!(depth("({a: [1]})"), 3);
        assert_eq!(depth("[[[[["), 5);
        assert_eq!(depth("]]]]"), 0);
    }

    #[test]
    fn chains_add_up_and_siblings_do_not() {
        assert_eq!(depth(". | . | ."), 2);
        assert_eq!(depth("1 + 2 * 3 - 4"), 3);
        assert_eq!(depth("1, 2, 3"), 2);
        assert_eq!(depth("-1"), 1);
        assert_eq!(depth("1e-5 + 1E+5"), 1);
        assert_eq!(depth("a and b or not"), 2);
        assert_eq!(depth("if . then 1 elif . then 2 else 3 end"), 2);
        assert_eq!(depth("limit(1 | 2 | 3; 4 | 5)"), 3);
        // One more than jaq's tree: `.[]` is counted as a step of the path `.`.
        assert_eq!(depth("reduce .[] as $x (0; . + $x)"), 4);
    }

    #[test]
    fn object_fields_count_but_their_values_are_siblings() {
        assert_eq!(depth("{a: 1}"), 1);
        assert_eq!(depth("{a: 1, b: 2, c: 3}"), 3);
        assert_eq!(depth("{a: 1 | 2 | 3, b: 4 | 5}"), 4);
        assert_eq!(depth("[1, 2, 3]"), 3);
    }

    #[test]
    fn paths_count_each_step() {
        assert_eq!(depth("."), 0);
        assert_eq!(depth(".."), 0);
        assert_eq!(depth(".a"), 1);
        assert_eq!(depth(".a.b.c"), 3);
        assert_eq!(depth(".a[0][1]"), 4);
        assert_eq!(depth(".a [0]"), 3);
        assert_eq!(depth(r#"."a""#), 1);
        // Keywords as field names are not keywords.
        assert_eq!(depth(".if.def.reduce"), 3);
    }

    #[test]
    fn strings_and_comments_hide_brackets_and_operators() {
        assert_eq!(depth(r#""[[[ ||| {{{ \" (((""#), 0);
        assert_eq!(depth("1 # [[[ |||\n"), 0);
        assert_eq!(depth("1 # [[[ \\\n [[[ still a comment\n"), 0);
        assert_eq!(depth("# even \\\\\n [[[1]]]"), 3);
    }

    #[test]
    fn interpolations_are_blocks_and_links() {
        assert_eq!(depth(r#""\(1)""#), 2);
        assert_eq!(depth(r#""\(1) \(2) \(3)""#), 4);
        assert_eq!(depth(r#""\("\(1)")""#), 4);
    }

    #[test]
    fn definitions_nest_their_rest_but_not_each_other() {
        assert_eq!(depth("def f: 1; def g: 2; def h: 3; f"), 2);
        assert_eq!(depth("def f: def g: 1; g; f"), 2);
        assert_eq!(depth("f(def g: 1; g)"), 2);
    }

    #[test]
    fn the_limit_is_inclusive_and_reports_where_it_was_crossed() {
        let ok = format!("{}1{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert!(check(&ok).is_ok());
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        let err = check(&deep).unwrap_err();
        assert_eq!(err.offset, Some(MAX_NESTING));
        assert!(err.message.contains("nested too deeply"), "{err}");

        let chain = format!("1{}", " | 1".repeat(MAX_NESTING + 1));
        let err = check(&chain).unwrap_err();
        assert_eq!(err.offset, Some(chain.len() - 3));
    }
}
