//! Column alignment as Go's `text/tabwriter` (elastic tabstops) does it
//! for docker's tables: cells are tab-terminated; a column block is a run
//! of consecutive lines that have a cell in that column; a column's width
//! is the widest cell plus the padding, at least the minimum width; the
//! text after a line's last tab is not part of any column. Docker uses
//! minwidth 10, padding 3, padchar ' ' ([`TabWriter::docker`]).

/// Buffers text and aligns it on [`TabWriter::finish`].
#[derive(Debug, Clone)]
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    text: String,
}

impl TabWriter {
    pub fn new(minwidth: usize, padding: usize) -> TabWriter {
        TabWriter {
            minwidth,
            padding,
            text: String::new(),
        }
    }

    /// Docker's table settings.
    pub fn docker() -> TabWriter {
        TabWriter::new(10, 3)
    }

    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// The aligned text.
    pub fn finish(self) -> String {
        let trailing_newline = self.text.ends_with('\n');
        let body = self.text.strip_suffix('\n').unwrap_or(&self.text);
        let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut widths = Vec::new();
        let mut out = String::with_capacity(self.text.len() * 2);
        self.format(&lines, &mut widths, 0, lines.len(), &mut out);
        if trailing_newline {
            out.push('\n');
        }
        out
    }

    fn format(
        &self,
        lines: &[Vec<&str>],
        widths: &mut Vec<usize>,
        mut line0: usize,
        line1: usize,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            // Cells terminated by a tab: all but the last of each line.
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(lines, widths, line0, this, out);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(cell_width(lines[this][column]) + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(lines, widths, line0, this, out);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, widths, line0, line1, out);
    }

    fn write_lines(
        &self,
        lines: &[Vec<&str>],
        widths: &[usize],
        line0: usize,
        line1: usize,
        out: &mut String,
    ) {
        for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if j + 1 < line.len()
                    && let Some(w) = widths.get(j)
                {
                    let pad = w.saturating_sub(cell_width(cell));
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 < lines.len() {
                out.push('\n');
            }
        }
    }
}

fn cell_width(s: &str) -> usize {
    s.chars().count()
}

/// Aligns `text` with docker's settings.
pub fn align(text: &str) -> String {
    let mut t = TabWriter::docker();
    t.push(text);
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ps_layout() {
        let text = "CONTAINER ID\tIMAGE\tCOMMAND\tNAMES\nabc123def456\tbusybox\t\"sh\"\tweb\n";
        assert_eq!(
            align(text),
            "CONTAINER ID   IMAGE     COMMAND   NAMES\nabc123def456   busybox   \"sh\"      web\n"
        );
    }

    #[test]
    fn min_width_and_empty_cells() {
        // Empty cells still take the column's width; the last cell is not padded.
        let text = "A\tB\tC\n\t\tlast\n";
        assert_eq!(
            align(text),
            "A         B         C\n                    last\n"
        );
    }

    #[test]
    fn column_blocks_follow_go() {
        // The b column is not contiguous: lines 1-2 and line 4 form separate blocks.
        let text = "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n";
        let t = TabWriter::new(0, 1);
        let mut t = t;
        t.push(text);
        assert_eq!(
            t.finish(),
            "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n"
        );
    }
}
