//! `horizon forecast FILE`: the real binary on small CSV files.

use std::process::Command;

fn horizon(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_horizon"))
        .args(args)
        .output()
        .expect("run horizon")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write csv");
    path.to_string_lossy().into_owned()
}

#[test]
fn forecasts_a_csv_with_dates_gaps_and_levels() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Series "b" comes first in the file but out of order; "a" has a gap
    // (no 2024-01-03) and an empty value.
    let csv = write(
        &dir,
        "in.csv",
        "unique_id,ds,y\n\
         b,2024-01-02,7\n\
         b,2024-01-01,5\n\
         a,2024-01-01,10\n\
         a,2024-01-02,\n\
         a,2024-01-04,13\n\
         b,2024-01-03,9\n",
    );
    let out_path = dir.path().join("out.csv");
    let out = horizon(&[
        "forecast",
        &csv,
        "--horizon",
        "2",
        "--method",
        "naive",
        "--level",
        "95,80",
        "--out",
        out_path.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a terminal: no progress bar, nothing on stderr.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_path).expect("output written");
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "unique_id",
            "ds",
            "naive",
            "naive-lo-80",
            "naive-hi-80",
            "naive-lo-95",
            "naive-hi-95"
        ]
    );
    assert_eq!(rows.len(), 5, "{text}");
    // In file order of first appearance, each continuing its own calendar.
    assert_eq!(&rows[1][..3], ["b", "2024-01-04", "9"]);
    assert_eq!(&rows[2][..3], ["b", "2024-01-05", "9"]);
    assert_eq!(&rows[3][..3], ["a", "2024-01-05", "13"]);
    for row in &rows[1..] {
        let v: Vec<f64> = row[2..]
            .iter()
            .map(|x| x.parse().expect("number"))
            .collect();
        assert!(
            v[3] <= v[1] && v[1] <= v[0] && v[0] <= v[2] && v[2] <= v[4],
            "{row:?}"
        );
    }
}

#[test]
fn integer_time_axis_custom_columns_and_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from("store,t,sales\n");
    for t in 0..40 {
        let y = 50.0 + 10.0 * [1.0, -1.0, 0.5, -0.5][t % 4];
        text.push_str(&format!("s1,{},{y}\n", 100 + 2 * t));
    }
    let csv = write(&dir, "in.csv", &text);
    let out = horizon(&[
        "forecast",
        &csv,
        "--horizon",
        "4",
        "--season-length",
        "4",
        "--method",
        "seasonal_naive",
        "--id-col",
        "store",
        "--time-col",
        "t",
        "--target-col",
        "sales",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "store,t,seasonal_naive");
    assert_eq!(
        lines[1..],
        ["s1,180,60", "s1,182,40", "s1,184,55", "s1,186,45"]
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = write(&dir, "in.csv", "unique_id,ds,value\na,2024-01-01,1\n");
    let out = horizon(&["forecast", &csv, "--horizon", "2"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no column 'y'"), "{stderr}");
    let csv = write(
        &dir,
        "bad.csv",
        "unique_id,ds,y\na,2024-01-01,1\na,2024-01-02,x\n",
    );
    let out = horizon(&["forecast", &csv, "--horizon", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("line 3"),
        "{stderr}"
    );
    // Season lengths follow the API's rules, as with --url.
    let csv = write(
        &dir,
        "ok.csv",
        "unique_id,ds,y\na,2024-01-01,1\na,2024-01-02,2\na,2024-01-03,3\n",
    );
    for (seasons, says) in [
        ("0", "from 1 to 10000"),
        ("10001", "from 1 to 10000"),
        ("7,1", "cannot be combined"),
    ] {
        let out = horizon(&[
            "forecast",
            &csv,
            "--horizon",
            "2",
            "--season-length",
            seasons,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{seasons}: {stderr}"
        );
    }
    // The server's least length, as with --url.
    let csv = write(&dir, "short.csv", "unique_id,ds,y\na,1,1\na,2,2\n");
    let out = horizon(&["forecast", &csv, "--horizon", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("has 2 points; at least 3 are needed"),
        "{stderr}"
    );
    // A model name the URL would resolve away, and an address without its
    // scheme, are refused before any request.
    for (flags, says) in [
        (["--url", "http://127.0.0.1:9", "--model", ".."], "--model"),
        (
            ["--url", "127.0.0.1:9", "--model", "m"],
            "give the whole address",
        ),
        (
            ["--url", "localhost:9", "--model", "m"],
            "give the whole address",
        ),
    ] {
        let mut args = vec!["forecast", &csv, "--horizon", "2"];
        args.extend(flags);
        let out = horizon(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{flags:?}: {stderr}"
        );
    }
}

/// A Parquet file as pandas writes one: text ids, naive nanosecond
/// timestamps, float values with a null.
fn write_parquet(dir: &tempfile::TempDir, name: &str) -> String {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
    use std::sync::Arc;
    let day = 86_400_000_000_000i64;
    // 2024-01-01 is day 19723 since 1970-01-01.
    let start = 19_723 * day;
    let ids = ["b", "b", "b", "a", "a", "a"];
    let ds = [1, 0, 2, 0, 1, 3].map(|d| start + d * day);
    let y = [
        Some(7.0),
        Some(5.0),
        Some(9.0),
        Some(10.0),
        None,
        Some(13.0),
    ];
    let batch = RecordBatch::try_from_iter([
        (
            "unique_id",
            Arc::new(StringArray::from(ids.to_vec())) as ArrayRef,
        ),
        (
            "ds",
            Arc::new(TimestampNanosecondArray::from(ds.to_vec())) as ArrayRef,
        ),
        ("y", Arc::new(Float64Array::from(y.to_vec())) as ArrayRef),
    ])
    .expect("batch");
    let path = dir.path().join(name);
    let file = std::fs::File::create(&path).expect("create parquet");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    path.to_string_lossy().into_owned()
}

#[test]
fn parquet_in_and_out_matches_the_csv_path() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = write_parquet(&dir, "in.parquet");
    // The same rows as CSV: both paths must give the same forecast.
    let csv = write(
        &dir,
        "in.csv",
        "unique_id,ds,y\nb,2024-01-02,7\nb,2024-01-01,5\nb,2024-01-03,9\n\
         a,2024-01-01,10\na,2024-01-02,\na,2024-01-04,13\n",
    );
    let common = ["--horizon", "2", "--method", "ets", "--level", "80"];
    let out_path = dir.path().join("out.parquet");
    let mut args = vec!["forecast", input.as_str()];
    args.extend(common);
    args.extend(["--out", out_path.to_str().expect("utf-8 path")]);
    let out = horizon(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut args = vec!["forecast", csv.as_str()];
    args.extend(common);
    let from_csv = horizon(&args);
    assert!(
        from_csv.status.success(),
        "{}",
        String::from_utf8_lossy(&from_csv.stderr)
    );
    let expected: Vec<Vec<String>> = String::from_utf8(from_csv.stdout)
        .expect("utf-8")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(expected.len(), 4);

    let file = std::fs::File::open(&out_path).expect("output written");
    let batches: Vec<_> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("a Parquet file")
            .build()
            .expect("reader")
            .map(|b| b.expect("batch"))
            .collect();
    let batch = &batches[0];
    let names: Vec<&str> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["unique_id", "ds", "ets", "ets-lo-80", "ets-hi-80"]);
    assert_eq!(batch.num_rows(), expected.len());
    for (r, row) in expected.iter().enumerate() {
        assert_eq!(batch.column(0).as_string::<i32>().value(r), row[0]);
        assert_eq!(batch.column(1).as_string::<i32>().value(r), row[1]);
        for (c, text) in row.iter().enumerate().skip(2) {
            let v = batch.column(c).as_primitive::<Float64Type>().value(r);
            assert_eq!(
                v,
                text.parse::<f64>().expect("number"),
                "row {r} column {c}"
            );
        }
    }
}
