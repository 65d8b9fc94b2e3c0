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
}
