//! Apache Parquet in and out through Arrow record batches: the reader reads
//! only the three columns, batch by batch; the writer writes row groups of
//! [`ROWS_PER_GROUP`] rows as series come, so its output can be streamed.

use crate::read::{positions, At, Collector, RowSink};
use crate::{Columns, ForecastLayout, Series, TableError};
use arrow_array::cast::AsArray;
use arrow_array::temporal_conversions::{as_date, as_datetime};
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{FixedOffset, NaiveDateTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;
use protocol::calendar::Timestamp;
use std::io::Write;
use std::sync::Arc;

/// Rows per record batch read.
const BATCH_ROWS: usize = 8192;
/// Rows per row group written: what the writer holds before bytes come out.
pub const ROWS_PER_GROUP: usize = 64 * 1024;

fn format_error(e: impl std::fmt::Display) -> TableError {
    let text = e.to_string();
    if let Some(codec) = text.split("Disabled feature at compile time: ").nth(1) {
        // The codec is named by the crate behind it (flate2: gzip).
        let codec = match codec.trim() {
            "flate2" => "gzip",
            other => other,
        };
        return TableError::Format(format!(
            "Parquet compressed with {codec} is not read here; write it with Snappy (pandas' \
             default), zstd or LZ4, or uncompressed"
        ));
    }
    TableError::Format(format!("bad Parquet file: {text}"))
}

/// Reads the long format from a Parquet file (anything with random access:
/// a file, bytes). `id` may be text, an integer or a dictionary of them;
/// `ds` a timestamp (naive, UTC or a fixed offset), a date, an ISO 8601
/// text or an integer; `y` a float or an integer, null or NaN when missing.
pub fn read_parquet<R: ChunkReader + 'static>(
    reader: R,
    columns: &Columns,
) -> Result<Vec<Series>, TableError> {
    let mut collector = Collector::default();
    parquet_rows(reader, columns, &mut collector)?;
    collector.finish()
}

/// Reads the long format from a Parquet file as [`read_parquet`] does,
/// into `sink` instead of series.
pub fn parquet_rows<R: ChunkReader + 'static>(
    reader: R,
    columns: &Columns,
    sink: &mut impl RowSink,
) -> Result<(), TableError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(reader).map_err(format_error)?;
    let schema = builder.schema().clone();
    let names = schema.fields().iter().map(|f| f.name().as_str());
    let at = positions(names, columns)?;
    // Top-level fields are the root columns, in the same order.
    let mask = ProjectionMask::roots(builder.parquet_schema(), at);
    let batches = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(format_error)?;
    let mut row0: u64 = 0;
    for batch in batches {
        let batch = batch.map_err(format_error)?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| TableError::Format(format!("column '{name}' was not read")))
        };
        let ids = ids(&column(&columns.id)?, &columns.id)?;
        let times = times(&column(&columns.time)?, &columns.time)?;
        let values = values(&column(&columns.target)?, &columns.target)?;
        for (i, ((id, at), y)) in ids.into_iter().zip(times).zip(values).enumerate() {
            let row = row0 + i as u64 + 1;
            let bad = |message: String| TableError::Row { row, message };
            let id = id.ok_or_else(|| bad(format!("{} is null", columns.id)))?;
            if id.is_empty() {
                return Err(bad(format!("{} is empty", columns.id)));
            }
            let at = at
                .ok_or_else(|| bad(format!("{} is null", columns.time)))?
                .map_err(|m| bad(format!("{} {m}", columns.time)))?;
            sink.push(&id, at, y).map_err(bad)?;
        }
        row0 += batch.num_rows() as u64;
    }
    Ok(())
}

fn unsupported(name: &str, data_type: &DataType, wanted: &str) -> TableError {
    TableError::ColumnType {
        name: name.to_string(),
        message: format!("has type {data_type}; expected {wanted}"),
    }
}

/// Integers of any width as `i64`, with their nulls.
fn integers(array: &ArrayRef) -> Option<Vec<Option<i64>>> {
    macro_rules! ints {
        ($($t:ty),*) => {
            $(if let Some(a) = array.as_primitive_opt::<$t>() {
                return Some(a.iter().map(|v| v.and_then(|v| i64::try_from(v).ok())).collect());
            })*
        };
    }
    ints!(Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type);
    None
}

/// Texts of a string column of any layout.
fn texts(array: &ArrayRef) -> Option<Vec<Option<String>>> {
    let own = |s: Option<&str>| s.map(str::to_string);
    if let Some(a) = array.as_string_opt::<i32>() {
        return Some(a.iter().map(own).collect());
    }
    if let Some(a) = array.as_string_opt::<i64>() {
        return Some(a.iter().map(own).collect());
    }
    array
        .as_string_view_opt()
        .map(|a| a.iter().map(own).collect())
}

/// The values of a dictionary column (pandas' `category`) through `each`.
fn dictionary<T: Clone>(
    array: &ArrayRef,
    each: impl Fn(&ArrayRef) -> Result<Vec<Option<T>>, TableError>,
) -> Option<Result<Vec<Option<T>>, TableError>> {
    let dict = array.as_any_dictionary_opt()?;
    let values = match each(dict.values()) {
        Ok(values) => values,
        Err(e) => return Some(Err(e)),
    };
    let keys = dict.normalized_keys();
    Some(Ok(keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            if array.is_valid(i) {
                values.get(k).cloned().flatten()
            } else {
                None
            }
        })
        .collect()))
}

fn ids(array: &ArrayRef, name: &str) -> Result<Vec<Option<String>>, TableError> {
    if let Some(t) = texts(array) {
        return Ok(t);
    }
    if let Some(ints) = integers(array) {
        return Ok(ints.into_iter().map(|v| v.map(|v| v.to_string())).collect());
    }
    if let Some(d) = dictionary(array, |values| ids(values, name)) {
        return d;
    }
    Err(unsupported(name, array.data_type(), "text or integers"))
}

fn values(array: &ArrayRef, name: &str) -> Result<Vec<Option<f64>>, TableError> {
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    if let Some(a) = array.as_primitive_opt::<Float64Type>() {
        return Ok(a.iter().map(finite).collect());
    }
    if let Some(a) = array.as_primitive_opt::<Float32Type>() {
        return Ok(a.iter().map(|v| finite(v.map(f64::from))).collect());
    }
    if let Some(ints) = integers(array) {
        return Ok(ints.into_iter().map(|v| v.map(|v| v as f64)).collect());
    }
    Err(unsupported(name, array.data_type(), "floats or integers"))
}

type Times = Vec<Option<Result<At, String>>>;

fn times(array: &ArrayRef, name: &str) -> Result<Times, TableError> {
    if let Some(t) = texts(array) {
        return Ok(t
            .into_iter()
            .map(|t| t.map(|t| At::parse(&t).map_err(|m| format!("'{t}' {m}"))))
            .collect());
    }
    if let Some(ints) = integers(array) {
        return Ok(ints
            .into_iter()
            .map(|v| v.map(|v| Ok(At::Index(v))))
            .collect());
    }
    match array.data_type() {
        DataType::Timestamp(unit, tz) => {
            let offset = match tz.as_deref() {
                None => None,
                Some(tz) => Some(fixed_offset(tz).ok_or_else(|| TableError::ColumnType {
                    name: name.to_string(),
                    message: format!(
                        "has the time zone '{tz}'; only UTC and fixed offsets (+02:00) are read: \
                         convert the column to UTC first"
                    ),
                })?),
            };
            macro_rules! stamps {
                ($t:ty) => {
                    array
                        .as_primitive::<$t>()
                        .iter()
                        .map(|v| v.map(|v| datetime(as_datetime::<$t>(v), offset)))
                        .collect()
                };
            }
            Ok(match unit {
                TimeUnit::Second => stamps!(TimestampSecondType),
                TimeUnit::Millisecond => stamps!(TimestampMillisecondType),
                TimeUnit::Microsecond => stamps!(TimestampMicrosecondType),
                TimeUnit::Nanosecond => stamps!(TimestampNanosecondType),
            })
        }
        DataType::Date32 => Ok(array
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| v.map(|v| date(as_date::<Date32Type>(i64::from(v)))))
            .collect()),
        DataType::Date64 => Ok(array
            .as_primitive::<Date64Type>()
            .iter()
            .map(|v| v.map(|v| date(as_date::<Date64Type>(v))))
            .collect()),
        _ => {
            if let Some(d) = dictionary(array, |values| times(values, name)) {
                return d;
            }
            Err(unsupported(
                name,
                array.data_type(),
                "timestamps, dates, ISO 8601 text or integers",
            ))
        }
    }
}

/// `UTC` and its spellings, or `+02:00` / `-0530`.
fn fixed_offset(tz: &str) -> Option<FixedOffset> {
    if ["utc", "z", "etc/utc", "gmt", "etc/gmt", "+00:00"]
        .iter()
        .any(|u| tz.eq_ignore_ascii_case(u))
    {
        return FixedOffset::east_opt(0);
    }
    let t = Timestamp::parse(&format!("2000-01-01T00:00{tz}")).ok()?;
    t.offset()
}

fn date(d: Option<chrono::NaiveDate>) -> Result<At, String> {
    let d = d.ok_or_else(|| "is out of range".to_string())?;
    Timestamp::parse(&d.format("%Y-%m-%d").to_string())
        .map(At::Date)
        .map_err(|_| "is out of range".to_string())
}

/// A timestamp as the API would have read it: UTC instants shown in their
/// offset; a naive midnight is a plain date (pandas stores dates so).
fn datetime(utc: Option<NaiveDateTime>, offset: Option<FixedOffset>) -> Result<At, String> {
    let t = utc.ok_or_else(|| "is out of range".to_string())?;
    let text = match offset {
        None if t.time() == chrono::NaiveTime::MIN => t.format("%Y-%m-%d").to_string(),
        None => t.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
        Some(o) => {
            let local = t + o;
            format!("{}{o}", local.format("%Y-%m-%dT%H:%M:%S%.f"))
        }
    };
    Timestamp::parse(&text)
        .map(At::Date)
        .map_err(|_| "is out of range".to_string())
}

/// Writes a forecast as Parquet: `id` and `ds` as text (ISO 8601 for
/// dates; null without a calendar), every value column a nullable float.
pub struct ParquetForecastWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    layout: ForecastLayout,
    schema: Arc<Schema>,
    ids: Vec<String>,
    ds: Vec<Option<String>>,
    cols: Vec<Vec<Option<f64>>>,
}

impl<W: Write + Send> ParquetForecastWriter<W> {
    pub fn new(out: W, layout: ForecastLayout) -> Result<Self, TableError> {
        let mut fields = vec![
            Field::new(&layout.id_col, DataType::Utf8, false),
            Field::new(&layout.time_col, DataType::Utf8, true),
        ];
        let value_columns = layout.value_columns();
        fields.extend(
            value_columns
                .iter()
                .map(|n| Field::new(n, DataType::Float64, true)),
        );
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
            .build();
        let writer =
            ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(format_error)?;
        Ok(Self {
            writer,
            schema,
            cols: vec![Vec::new(); value_columns.len()],
            layout,
            ids: Vec::new(),
            ds: Vec::new(),
        })
    }

    /// Adds one series' rows; a row group is written once enough rows wait.
    pub fn write_series(
        &mut self,
        id: &str,
        ds: Option<&[String]>,
        mean: &[f64],
        intervals: &[engine::Interval],
    ) -> Result<(), TableError> {
        let bands = self.layout.bands(intervals);
        for (k, &m) in mean.iter().enumerate() {
            self.ids.push(id.to_string());
            self.ds.push(ds.and_then(|d| d.get(k)).cloned());
            self.cols[0].push(Some(m));
            for (b, band) in bands.iter().enumerate() {
                self.cols[1 + 2 * b].push(band.map(|i| i.lower[k]));
                self.cols[2 + 2 * b].push(band.map(|i| i.upper[k]));
            }
        }
        if self.ids.len() >= ROWS_PER_GROUP {
            self.flush_rows()?;
        }
        Ok(())
    }

    /// The writer, e.g. to take the bytes of finished row groups out of a `Vec<u8>`.
    pub fn get_mut(&mut self) -> &mut W {
        self.writer.inner_mut()
    }

    /// Writes the rest and the footer; returns the writer.
    pub fn finish(mut self) -> Result<W, TableError> {
        self.flush_rows()?;
        self.writer.into_inner().map_err(format_error)
    }

    fn flush_rows(&mut self) -> Result<(), TableError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(self.ids.drain(..))),
            Arc::new(self.ds.drain(..).collect::<StringArray>()),
        ];
        arrays.extend(
            self.cols
                .iter_mut()
                .map(|c| Arc::new(c.drain(..).collect::<Float64Array>()) as ArrayRef),
        );
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(format_error)?;
        self.writer.write(&batch).map_err(format_error)?;
        // Each batch is a whole row group, so its bytes reach the writer now.
        self.writer.flush().map_err(format_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Time;
    use arrow_array::{Int64Array, TimestampNanosecondArray};
    use bytes::Bytes;

    fn parquet_of(batch: RecordBatch) -> Bytes {
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        Bytes::from(out)
    }

    #[test]
    fn reads_typed_columns_and_nulls() {
        let day = 86_400_000_000_000i64;
        let batch = RecordBatch::try_from_iter([
            (
                "unique_id",
                Arc::new(StringArray::from(vec!["a", "a", "b", "a"])) as ArrayRef,
            ),
            (
                "ds",
                Arc::new(TimestampNanosecondArray::from(vec![2 * day, 0, 0, day])) as ArrayRef,
            ),
            (
                "y",
                Arc::new(Float64Array::from(vec![
                    Some(3.0),
                    Some(1.0),
                    Some(5.0),
                    None,
                ])) as ArrayRef,
            ),
            (
                "extra",
                Arc::new(Int64Array::from(vec![0, 0, 0, 0])) as ArrayRef,
            ),
        ])
        .unwrap();
        let series = read_parquet(parquet_of(batch), &Columns::default()).unwrap();
        assert_eq!(series.len(), 2);
        let v = &series[0].values;
        assert_eq!((v.len(), v[0], v[2]), (3, 1.0, 3.0));
        assert!(v[1].is_nan());
        let Time::Dates(ds) = &series[0].time else {
            panic!("dates expected")
        };
        // Naive midnights are plain dates, as pandas stores them.
        assert_eq!(ds[2].to_string(), "1970-01-03");
    }

    /// Files as polars (zstd) and others (lz4) write them by default.
    #[test]
    fn compressed_files_are_read() {
        for compression in [
            Compression::ZSTD(Default::default()),
            Compression::LZ4_RAW,
            Compression::SNAPPY,
        ] {
            let batch = RecordBatch::try_from_iter([
                (
                    "unique_id",
                    Arc::new(StringArray::from(vec!["a"; 3])) as ArrayRef,
                ),
                ("ds", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
                (
                    "y",
                    Arc::new(Float64Array::from(vec![1.0, 2.0, 4.0])) as ArrayRef,
                ),
            ])
            .unwrap();
            let props = WriterProperties::builder()
                .set_compression(compression)
                .build();
            let mut out = Vec::new();
            let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            let series = read_parquet(Bytes::from(out), &Columns::default()).unwrap();
            assert_eq!(series[0].values, [1.0, 2.0, 4.0], "{compression:?}");
        }
        let refused = format_error("Parquet error: Disabled feature at compile time: flate2");
        assert!(
            refused.to_string().contains("compressed with gzip"),
            "{refused}"
        );
    }

    #[test]
    fn utc_timestamps_keep_their_offset_and_bad_types_are_named() {
        let hour = 3_600_000_000_000i64;
        let batch = RecordBatch::try_from_iter([
            (
                "unique_id",
                Arc::new(Int64Array::from(vec![7, 7, 7])) as ArrayRef,
            ),
            (
                "ds",
                Arc::new(
                    TimestampNanosecondArray::from(vec![0, hour, 2 * hour]).with_timezone("UTC"),
                ) as ArrayRef,
            ),
            ("y", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
        ])
        .unwrap();
        let series = read_parquet(parquet_of(batch.clone()), &Columns::default()).unwrap();
        assert_eq!(series[0].id, "7");
        let Time::Dates(ds) = &series[0].time else {
            panic!("dates expected")
        };
        assert_eq!(ds[1].to_string(), "1970-01-01T01:00:00Z");
        let columns = Columns {
            target: "unique_id".into(),
            id: "y".into(),
            ..Columns::default()
        };
        // Integer y as ids is fine; a timestamp as values is not.
        let columns = Columns {
            target: "ds".into(),
            ..columns
        };
        let e = read_parquet(parquet_of(batch), &columns).unwrap_err();
        assert!(
            e.to_string().starts_with("column 'ds': has type Timestamp"),
            "{e}"
        );
        let e = read_parquet(Bytes::from_static(b"not parquet"), &Columns::default()).unwrap_err();
        assert!(e.to_string().starts_with("bad Parquet file"), "{e}");
    }

    #[test]
    fn forecast_round_trips_through_the_reader_of_arrow() {
        let layout = ForecastLayout::new("unique_id", "ds", "ets", &[80.0]);
        let mut w = ParquetForecastWriter::new(Vec::new(), layout).unwrap();
        let band = engine::Interval {
            level: 80.0,
            lower: vec![0.0, 1.0],
            upper: vec![2.0, 3.0],
        };
        let ds = ["2024-01-01".to_string(), "2024-01-02".to_string()];
        w.write_series("a", Some(&ds), &[1.0, 2.0], &[band])
            .unwrap();
        w.write_series("b", None, &[5.0], &[]).unwrap();
        let bytes = Bytes::from(w.finish().unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        let batch = &batches[0];
        let names: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["unique_id", "ds", "ets", "ets-lo-80", "ets-hi-80"]);
        assert_eq!(batch.num_rows(), 3);
        let hi = batch.column(4).as_primitive::<Float64Type>();
        assert_eq!(hi.value(1), 3.0);
        assert!(hi.is_null(2));
        assert!(batch.column(1).is_null(2));
    }
}
