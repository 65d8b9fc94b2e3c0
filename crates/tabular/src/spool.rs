//! Rows spooled to an unnamed temporary file instead of held as series, so
//! that reading a table of any size takes memory for its series' ids and
//! row counts only, never for its values or times.
//!
//! A [`RowSpool`] is a [`RowSink`]: the readers put each row into it as a
//! fixed-size binary record (series slot, time, value), and it keeps per
//! series only its id, its row count and whether its times are dates
//! (refusing a series that mixes dates and integers, as the in-memory
//! collector does). [`SpooledRows`] then gives the series back whole
//! ([`SpooledRows::into_series`]) or split by a key of their ids
//! ([`SpooledRows::partition`]), each part read back as series by the same
//! collector that groups rows read into memory, so rows of a series keep
//! their file order and series their order of first appearance.

use crate::read::{At, Collector, RowSink};
use crate::{Series, TableError};
use protocol::calendar::Timestamp;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Bytes of one spooled row: slot (4), kind (1), padding (3), value (8),
/// time (16: an integer in the first 8, or [`Timestamp::to_bytes`]).
const RECORD: usize = 32;
const INDEX: u8 = 0;
const DATE: u8 = 1;
/// The top bit of a series' row count: its times are dates.
const DATED: u32 = 1 << 31;
/// Bytes of write buffers held at once while partitioning, in all.
const PARTITION_BUFFERS: usize = 8 << 20;
/// Bytes of read buffer while reading rows back.
const READ_BUFFER: usize = 256 << 10;

fn corrupt(what: &str) -> TableError {
    TableError::Io(std::io::Error::other(format!(
        "the spooled rows are corrupt: {what}"
    )))
}

/// Rows being spooled; see the module's documentation.
pub struct RowSpool {
    slots: HashMap<Box<str>, u32>,
    /// Rows of each series so far (by slot), [`DATED`] set for dates.
    counts: Vec<u32>,
    out: BufWriter<File>,
    rows: u64,
    max_series: usize,
    /// Why writing to the file failed, if it did (the readers see only a
    /// message; the caller asks for the error itself, see
    /// [`RowSpool::io_error`]).
    failed: Option<std::io::Error>,
}

impl RowSpool {
    /// A spool in an unnamed temporary file (removed when closed) that
    /// refuses more than `max_series` series (bounding what it holds).
    pub fn new(max_series: usize) -> std::io::Result<Self> {
        Ok(Self {
            slots: HashMap::new(),
            counts: Vec::new(),
            out: BufWriter::with_capacity(READ_BUFFER, tempfile::tempfile()?),
            rows: 0,
            max_series,
            failed: None,
        })
    }

    /// The error that stopped the spool, when a row was refused because
    /// the file could not be written (not because of the row).
    pub fn io_error(&mut self) -> Option<std::io::Error> {
        self.failed.take()
    }

    /// The rows spooled, ready to be read back; [`TableError::Empty`]
    /// without any.
    pub fn finish(self) -> Result<SpooledRows, TableError> {
        if self.counts.is_empty() {
            return Err(TableError::Empty);
        }
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        let mut ids: Vec<Box<str>> = vec![Box::default(); self.counts.len()];
        for (id, slot) in self.slots {
            ids[slot as usize] = id;
        }
        Ok(SpooledRows {
            file,
            ids,
            counts: self.counts,
            rows: self.rows,
        })
    }
}

impl RowSink for RowSpool {
    fn push(&mut self, id: &str, at: At, value: Option<f64>) -> Result<(), String> {
        let dated = matches!(at, At::Date(_));
        let slot = match self.slots.get(id) {
            Some(&slot) => slot,
            None => {
                if self.counts.len() >= self.max_series {
                    return Err(format!(
                        "series '{id}' is one more than the {} accepted in one fit",
                        self.max_series
                    ));
                }
                let slot = self.counts.len() as u32;
                self.slots.insert(id.into(), slot);
                self.counts.push(if dated { DATED } else { 0 });
                slot
            }
        };
        let count = &mut self.counts[slot as usize];
        match (*count & DATED != 0, dated) {
            (true, false) => {
                return Err(format!(
                    "series '{id}' has dates in earlier rows but an integer here"
                ))
            }
            (false, true) => {
                return Err(format!(
                    "series '{id}' has integers in earlier rows but a date here"
                ))
            }
            _ => {}
        }
        if *count & !DATED == !DATED {
            return Err(format!("series '{id}' has too many rows"));
        }
        *count += 1;
        let mut record = [0u8; RECORD];
        record[..4].copy_from_slice(&slot.to_le_bytes());
        record[8..16].copy_from_slice(&value.unwrap_or(f64::NAN).to_le_bytes());
        match at {
            At::Index(i) => {
                record[4] = INDEX;
                record[16..24].copy_from_slice(&i.to_le_bytes());
            }
            At::Date(t) => {
                record[4] = DATE;
                record[16..].copy_from_slice(&t.to_bytes());
            }
        }
        if let Err(e) = self.out.write_all(&record) {
            let message = format!("the rows could not be spooled to a temporary file: {e}");
            self.failed = Some(e);
            return Err(message);
        }
        self.rows += 1;
        Ok(())
    }
}

/// One record read back.
fn decode(record: &[u8; RECORD]) -> Result<(u32, At, Option<f64>), TableError> {
    let slot = u32::from_le_bytes([record[0], record[1], record[2], record[3]]);
    let mut value = [0u8; 8];
    value.copy_from_slice(&record[8..16]);
    let value = f64::from_le_bytes(value);
    let at = match record[4] {
        INDEX => {
            let mut i = [0u8; 8];
            i.copy_from_slice(&record[16..24]);
            At::Index(i64::from_le_bytes(i))
        }
        DATE => {
            let mut t = [0u8; 16];
            t.copy_from_slice(&record[16..]);
            At::Date(Timestamp::from_bytes(&t).ok_or_else(|| corrupt("a bad timestamp"))?)
        }
        _ => return Err(corrupt("a bad row kind")),
    };
    Ok((slot, at, (!value.is_nan()).then_some(value)))
}

/// Reads `rows` records from `reader` into series, grouped by `ids` (by
/// slot) through the collector of rows read into memory.
fn collect(mut reader: impl Read, rows: u64, ids: &[Box<str>]) -> Result<Vec<Series>, TableError> {
    if rows == 0 {
        return Ok(Vec::new());
    }
    let mut collector = Collector::default();
    let mut record = [0u8; RECORD];
    for _ in 0..rows {
        reader.read_exact(&mut record)?;
        let (slot, at, value) = decode(&record)?;
        let id = ids
            .get(slot as usize)
            .ok_or_else(|| corrupt("a bad series slot"))?;
        collector.push(id, at, value).map_err(|m| corrupt(&m))?;
    }
    collector.finish()
}

/// Spooled rows: the series' ids and row counts in memory, the rows in a
/// temporary file.
pub struct SpooledRows {
    file: File,
    ids: Vec<Box<str>>,
    counts: Vec<u32>,
    rows: u64,
}

impl SpooledRows {
    /// Series, in order of first appearance.
    pub fn n_series(&self) -> usize {
        self.ids.len()
    }

    /// Rows in all.
    pub fn n_rows(&self) -> u64 {
        self.rows
    }

    /// Each series' id and number of rows, in order of first appearance.
    pub fn series_rows(&self) -> impl Iterator<Item = (&str, usize)> {
        self.ids
            .iter()
            .zip(&self.counts)
            .map(|(id, c)| (&**id, (c & !DATED) as usize))
    }

    /// Every series, read back into memory (as [`crate::read_csv`] gives them).
    pub fn into_series(mut self) -> Result<Vec<Series>, TableError> {
        self.file.rewind()?;
        let reader = BufReader::with_capacity(READ_BUFFER, &self.file);
        collect(reader, self.rows, &self.ids)
    }

    /// The rows split into `parts` parts, series `id` into part
    /// `part_of(id)` (which must be below `parts`), in a temporary file of
    /// their own; this file is closed. Each part's rows keep their order.
    pub fn partition(
        mut self,
        parts: u32,
        part_of: impl Fn(&str) -> u32,
    ) -> Result<Parts, TableError> {
        let parts = parts.max(1) as usize;
        let part_of_slot: Vec<u32> = self
            .ids
            .iter()
            .map(|id| part_of(id).min(parts as u32 - 1))
            .collect();
        let mut rows = vec![0u64; parts];
        for (slot, c) in self.counts.iter().enumerate() {
            rows[part_of_slot[slot] as usize] += u64::from(c & !DATED);
        }
        // Part k's records start after those of the parts before it: each
        // part is written at its own place as the rows are read in order.
        let mut starts = Vec::with_capacity(parts + 1);
        let mut at = 0u64;
        for r in &rows {
            starts.push(at);
            at += r * RECORD as u64;
        }
        starts.push(at);
        let mut out = tempfile::tempfile()?;
        out.set_len(at)?;
        let per_part = (PARTITION_BUFFERS / parts / RECORD).clamp(16, 2048) * RECORD;
        let mut buffers: Vec<Vec<u8>> = (0..parts).map(|_| Vec::new()).collect();
        let mut written = starts.clone();
        let flush = |out: &mut File, buffer: &mut Vec<u8>, written: &mut u64| {
            out.seek(SeekFrom::Start(*written))?;
            out.write_all(buffer)?;
            *written += buffer.len() as u64;
            buffer.clear();
            Ok::<_, std::io::Error>(())
        };
        self.file.rewind()?;
        let mut reader = BufReader::with_capacity(READ_BUFFER, &self.file);
        let mut record = [0u8; RECORD];
        for _ in 0..self.rows {
            reader.read_exact(&mut record)?;
            let slot = u32::from_le_bytes([record[0], record[1], record[2], record[3]]);
            let part = *part_of_slot
                .get(slot as usize)
                .ok_or_else(|| corrupt("a bad series slot"))? as usize;
            let buffer = &mut buffers[part];
            if buffer.capacity() == 0 {
                buffer.reserve_exact(per_part);
            }
            buffer.extend_from_slice(&record);
            if buffer.len() >= per_part {
                flush(&mut out, buffer, &mut written[part])?;
            }
        }
        for (part, buffer) in buffers.iter_mut().enumerate() {
            if !buffer.is_empty() {
                flush(&mut out, buffer, &mut written[part])?;
            }
            // Let go of each buffer once written.
            *buffer = Vec::new();
        }
        if written[..parts] != starts[1..] {
            return Err(corrupt("the row counts do not add up"));
        }
        Ok(Parts {
            file: out,
            ids: self.ids,
            starts,
        })
    }
}

/// Spooled rows split into parts (see [`SpooledRows::partition`]).
pub struct Parts {
    file: File,
    ids: Vec<Box<str>>,
    /// Where each part's records start in the file, and the end.
    starts: Vec<u64>,
}

impl Parts {
    /// How many parts.
    pub fn count(&self) -> usize {
        self.starts.len() - 1
    }

    /// Part `index`'s series, in order of first appearance, each sorted by
    /// time as [`crate::read_csv`] gives them; none for an empty part.
    pub fn series(&self, index: usize) -> Result<Vec<Series>, TableError> {
        let (Some(&start), Some(&end)) = (self.starts.get(index), self.starts.get(index + 1))
        else {
            return Err(corrupt("no such part"));
        };
        let mut file = &self.file;
        file.seek(SeekFrom::Start(start))?;
        let reader = BufReader::with_capacity(READ_BUFFER, file);
        collect(reader, (end - start) / RECORD as u64, &self.ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{csv_rows, read_csv, Columns, Time};

    fn spool(text: &str) -> Result<SpooledRows, TableError> {
        let mut spool = RowSpool::new(1000).unwrap();
        csv_rows(text.as_bytes(), &Columns::default(), &mut spool)?;
        spool.finish()
    }

    /// Rows of `n` series of `len` rows: grouped by series, or interleaved
    /// (row k of every series, then row k + 1), with dates or integers,
    /// some values missing, one series off its step.
    fn table(n: usize, len: usize, interleaved: bool, dates: bool) -> String {
        let mut rows = Vec::new();
        for i in 0..n {
            for k in 0..len {
                let t = if i == 3 && k == len - 1 { k + 1 } else { k };
                let ds = if dates {
                    format!("2024-{:02}-01", t % 12 + 1)
                } else {
                    (10 + 2 * t).to_string()
                };
                let y = if (i + k) % 7 == 0 {
                    String::new()
                } else {
                    format!("{}.5", i * 100 + k)
                };
                rows.push((k, i, format!("id{i},{ds},{y}\n")));
            }
        }
        if interleaved {
            rows.sort_by_key(|r| (r.0, r.1));
        }
        std::iter::once("unique_id,ds,y\n".to_string())
            .chain(rows.into_iter().map(|r| r.2))
            .collect()
    }

    fn by_id(mut series: Vec<Series>) -> Vec<Series> {
        series.sort_by(|a, b| a.id.cmp(&b.id));
        series
    }

    /// Equal as series, NaN equal to NaN.
    fn same(a: &[Series], b: &[Series]) {
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(b) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.time, b.time, "{}", a.id);
            let bits = |s: &Series| s.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b), "{}", a.id);
        }
    }

    #[test]
    fn read_back_whole_the_series_are_those_read_into_memory() {
        for dates in [false, true] {
            for interleaved in [false, true] {
                let text = table(12, 10, interleaved, dates);
                let spooled = spool(&text).unwrap();
                assert_eq!(spooled.n_series(), 12);
                assert_eq!(spooled.n_rows(), 120);
                assert!(spooled.series_rows().all(|(_, n)| n == 10));
                let back = spooled.into_series().unwrap();
                same(
                    &back,
                    &read_csv(text.as_bytes(), &Columns::default()).unwrap(),
                );
            }
        }
    }

    #[test]
    fn parts_hold_the_same_series_interleaved_or_grouped() {
        for dates in [false, true] {
            let grouped = table(40, 9, false, dates);
            let interleaved = table(40, 9, true, dates);
            let whole = by_id(read_csv(grouped.as_bytes(), &Columns::default()).unwrap());
            let part_of = |id: &str| protocol::shard::shard_of(id, 5);
            let mut seen = Vec::new();
            let a = spool(&grouped).unwrap().partition(5, part_of).unwrap();
            let b = spool(&interleaved).unwrap().partition(5, part_of).unwrap();
            assert_eq!((a.count(), b.count()), (5, 5));
            for k in 0..5 {
                let (sa, sb) = (a.series(k).unwrap(), b.series(k).unwrap());
                assert!(sa.iter().all(|s| part_of(&s.id) == k as u32));
                // Order of first appearance: the same for both tables.
                same(&sa, &sb);
                seen.extend(sa);
            }
            same(&by_id(seen), &whole);
            if !dates {
                // Rows on their step stay a run; the series off it does not.
                let s = whole.iter().find(|s| s.id == "id1").unwrap();
                assert_eq!(s.time, Time::Steps { first: 10, step: 2 });
            }
        }
    }

    #[test]
    fn an_empty_part_has_no_series() {
        let parts = spool("unique_id,ds,y\na,1,1\na,2,2\n")
            .unwrap()
            .partition(3, |_| 2)
            .unwrap();
        assert!(parts.series(0).unwrap().is_empty());
        assert_eq!(parts.series(2).unwrap()[0].values, [1.0, 2.0]);
        assert!(parts.series(3).is_err());
    }

    #[test]
    fn bad_series_are_refused_while_spooling() {
        let e = spool("unique_id,ds,y\na,1,1\na,2024-01-02,2\n")
            .err()
            .unwrap();
        assert!(
            e.to_string().starts_with("line 3: series 'a' has integers"),
            "{e}"
        );
        let e = spool("unique_id,ds,y\na,2024-01-01,1\na,2,2\n")
            .err()
            .unwrap();
        assert!(
            e.to_string().starts_with("line 3: series 'a' has dates"),
            "{e}"
        );
        assert!(matches!(spool("unique_id,ds,y\n"), Err(TableError::Empty)));
        let mut small = RowSpool::new(2).unwrap();
        let e = csv_rows(
            "unique_id,ds,y\na,1,1\nb,1,1\na,2,2\nc,1,1\n".as_bytes(),
            &Columns::default(),
            &mut small,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 5: series 'c' is one more than the 2 accepted in one fit"
        );
        assert!(small.io_error().is_none());
    }
}
