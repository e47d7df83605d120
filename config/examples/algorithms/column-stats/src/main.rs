//! `column-stats COLUMN`: reads a CSV dataset (header row first, comma-separated, no quoted
//! commas) from standard input and writes the row count and the count, sum, mean, minimum
//! and maximum of the numeric values in COLUMN as one JSON object to standard output.
//! Only these aggregates leave the provider, never a row.
//!
//! Exit status 2 with a message on standard error: no such column, or no header.

use std::io::{BufRead, Write};

/// What this algorithm reads, writes and needs, for the providers that run it: kept in the
/// component as its `gaiamesh-algorithm` section, so the release's signature covers it.
#[used]
#[unsafe(link_section = "gaiamesh-algorithm")]
static MANIFEST: [u8; include_bytes!("../algorithm.toml").len()] = *include_bytes!("../algorithm.toml");

fn main() {
    let column = std::env::args().nth(1).unwrap_or_else(|| "value".to_owned());
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let Some(Ok(header)) = lines.next() else {
        eprintln!("the dataset is empty (no header row)");
        std::process::exit(2);
    };
    let Some(index) = header.split(',').position(|h| h.trim() == column) else {
        eprintln!("no column named {column:?} (columns: {header})");
        std::process::exit(2);
    };
    let (mut rows, mut count, mut sum) = (0u64, 0u64, 0f64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for line in lines {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        rows += 1;
        if let Some(v) = line.split(',').nth(index).and_then(|f| f.trim().parse::<f64>().ok()) {
            count += 1;
            sum += v;
            min = min.min(v);
            max = max.max(v);
        }
    }
    let number = |x: f64| {
        if x.is_finite() {
            format!("{x}")
        } else {
            "null".to_owned()
        }
    };
    let mean = if count > 0 { sum / count as f64 } else { f64::NAN };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{{\"column\":{column:?},\"rows\":{rows},\"count\":{count},\"sum\":{},\"mean\":{},\"min\":{},\"max\":{}}}",
        number(sum),
        number(mean),
        number(min),
        number(max)
    );
}
