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
//! 3.5 KiB and 1 KiB. At 128 levels the worst case stays well inside the 2 MiB that Rust
//! and tokio give a thread by default, leaving room for the caller's own frames. Real
//! expressions are rarely deeper than a few dozen; a wide object can be split as
//! `{…} + {…}`, since the halves are siblings.

use crate::CompileError;

/// Deepest syntax tree accepted in a program, as estimated by this module.
pub const MAX_NESTING: usize = 128;

/// Refuses `source` if its estimated nesting exceeds [`MAX_NESTING`].
pub(crate) fn check(source: &str) -> Result<(), CompileError> {
    Scanner::new(source).run()
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
    fn new(source: &'a str) -> Self {
        Scanner {
            source,
            bytes: source.as_bytes(),
            pos: 0,
            in_string: false,
            after_term: false,
            root: Block::new(Kind::Top, 0),
            stack: Vec::new(),
        }
    }

    fn run(mut self) -> Result<(), CompileError> {
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
        self.limit(self.root.depth(), self.bytes.len())
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
                self.skip_while(|b| is_ident(b) || b == b':');
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
        if depth <= MAX_NESTING {
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
