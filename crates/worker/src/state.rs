//! The fitted state of one model version: every series' fitted model, in the
//! order they were fitted, encoded with postcard for the store.
//!
//! # Format upgrades
//!
//! The bytes start with two numbers, this module's [`STATE_FORMAT`] and the
//! engine's `FORMAT_VERSION`; either is bumped on any change of the layout
//! (postcard is not self-describing: a field added or a variant inserted
//! without a bump would be misread, which the golden files below catch).
//! The rule for a change:
//!
//! - a layout change only appends (fields at the end, enum variants after
//!   the existing ones) and bumps the version;
//! - a state written by an *older* version is read through the old layout,
//!   frozen as a legacy struct (engine `FORMAT_VERSION` 2:
//!   `engine::FittedModelV2`), and converted with defaults for the new fields;
//!   [`LoadedModel::decode`] lists the readers. A layout with no reader left
//!   is refused with "fit the model again";
//! - a state written by a *newer* version is not a verdict: in a rolling
//!   deploy the old worker answers "unavailable" (a 503 the client may
//!   retry; an upgraded worker answers it), never a failure for ever.
//!
//! Golden files (`tests/golden/*.bin`, one per method) hold the encoded state
//! of a fixed fit for every method; a test compares today's encoding with them
//! byte for byte and decodes them. After a deliberate change (with its bump),
//! move them to `tests/golden/v<old>/` (the old reader's test reads them
//! there), then regenerate them with one command:
//! `HORIZON_BLESS=1 cargo test -p worker --lib golden`.

use crate::heap;
use engine::SeriesData;
use engine::{FittedModel, FittedModelV2, ModelSpec};
use protocol::calendar::{IndexAxis, SeriesCalendar};
use protocol::NamedSeries;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use thiserror::Error;

/// Layout version of [`Stored`]; bump on any change.
///
/// 2: the fit's spec and training series appended (observations filter
/// forward from them, backtests of a version run on them). Format 1 is read
/// without them.
/// 3: each training series' integer axis appended (see [`Axes`]); format 2
/// is read with none.
const STATE_FORMAT: u32 = 3;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("the stored model cannot be read ({0}); fit the model again")]
    Decode(String),
    #[error(
        "the stored model has layout {found}, this build reads {expected}; fit the model again"
    )]
    Format { found: u32, expected: u32 },
    #[error("{0}")]
    Encode(String),
}

impl StateError {
    /// The state was written by a newer build than this one.
    pub fn is_newer(&self) -> bool {
        matches!(self, StateError::Format { found, expected } if found > expected)
    }
}

/// The leading part of every layout: what format 1 held entirely.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    engine_format: u32,
    series: Vec<(String, FittedModel)>,
}

/// What format 2 appends after [`Stored`]. (Not `NamedSeries` itself: its
/// serde skips an absent calendar, which postcard cannot read back.)
#[derive(Serialize, Deserialize, Default)]
struct Inputs {
    spec: Option<ModelSpec>,
    series: Vec<(String, SeriesData, Option<SeriesCalendar>)>,
}

/// What format 3 appends after [`Inputs`]: the integer axis of each
/// training series (same order), so that new observations move it on.
#[derive(Serialize, Deserialize, Default)]
struct Axes {
    index: Vec<Option<IndexAxis>>,
}

/// A decoded model version with an index by series id.
#[derive(Debug)]
pub struct LoadedModel {
    series: Vec<(String, FittedModel)>,
    index: HashMap<String, usize>,
    /// The spec of the fit that made the version (none in format 1).
    spec: Option<ModelSpec>,
    /// The training series, in the order of `series` (empty in format 1).
    inputs: Vec<NamedSeries>,
}

impl LoadedModel {
    pub fn new(series: Vec<(String, FittedModel)>) -> Self {
        let index = series
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.clone(), i))
            .collect();
        Self {
            series,
            index,
            spec: None,
            inputs: Vec::new(),
        }
    }

    /// The same model, keeping the spec and the training series it was
    /// fitted (or filtered) on; `inputs` in the order of the series.
    pub fn with_inputs(mut self, spec: ModelSpec, inputs: Vec<NamedSeries>) -> Self {
        self.spec = Some(spec);
        self.inputs = inputs;
        self
    }

    pub fn spec(&self) -> Option<&ModelSpec> {
        self.spec.as_ref()
    }

    /// The training series (empty for a version stored before they were
    /// kept).
    pub fn inputs(&self) -> &[NamedSeries] {
        &self.inputs
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The `i`-th series; `i` must be below [`Self::len`].
    pub fn get(&self, i: usize) -> (&str, &FittedModel) {
        let (id, fitted) = &self.series[i];
        (id, fitted)
    }

    pub fn encode(&self) -> Result<Vec<u8>, StateError> {
        #[derive(Serialize)]
        struct StoredRef<'a> {
            format: u32,
            engine_format: u32,
            series: &'a [(String, FittedModel)],
            inputs: Inputs,
            axes: Axes,
        }
        postcard::to_stdvec(&StoredRef {
            format: STATE_FORMAT,
            engine_format: engine::FORMAT_VERSION,
            series: &self.series,
            inputs: Inputs {
                spec: self.spec.clone(),
                series: self
                    .inputs
                    .iter()
                    .map(|s| (s.id.clone(), s.values.clone(), s.calendar))
                    .collect(),
            },
            axes: Axes {
                index: self.inputs.iter().map(|s| s.index).collect(),
            },
        })
        .map_err(|e| StateError::Encode(e.to_string()))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        // The two leading numbers first, so a layout change gives a clear error.
        let (format, rest): (u32, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| StateError::Decode(e.to_string()))?;
        let (engine_format, _): (u32, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|e| StateError::Decode(e.to_string()))?;
        if !(1..=STATE_FORMAT).contains(&format) {
            return Err(StateError::Format {
                found: format,
                expected: STATE_FORMAT,
            });
        }
        match engine_format {
            engine::FORMAT_VERSION => {
                let (stored, rest): (Stored, &[u8]) = postcard::take_from_bytes(bytes)
                    .map_err(|e| StateError::Decode(e.to_string()))?;
                let decode = |e: postcard::Error| StateError::Decode(e.to_string());
                let (inputs, rest): (Inputs, &[u8]) = if format == 1 {
                    (Inputs::default(), rest)
                } else {
                    postcard::take_from_bytes(rest).map_err(decode)?
                };
                let axes: Axes = if format <= 2 {
                    Axes::default()
                } else {
                    postcard::from_bytes(rest).map_err(decode)?
                };
                let mut index = axes.index.into_iter();
                let mut model = Self::new(stored.series);
                model.spec = inputs.spec;
                model.inputs = inputs
                    .series
                    .into_iter()
                    .map(|(id, values, calendar)| NamedSeries {
                        id,
                        values,
                        calendar,
                        index: index.next().flatten(),
                    })
                    .collect();
                Ok(model)
            }
            2 => {
                #[derive(Deserialize)]
                struct StoredV2 {
                    _format: u32,
                    _engine_format: u32,
                    series: Vec<(String, FittedModelV2)>,
                }
                let stored: StoredV2 =
                    postcard::from_bytes(bytes).map_err(|e| StateError::Decode(e.to_string()))?;
                Ok(Self::new(
                    stored
                        .series
                        .into_iter()
                        .map(|(id, old)| (id, FittedModel::from(old)))
                        .collect(),
                ))
            }
            found => Err(StateError::Format {
                found,
                expected: engine::FORMAT_VERSION,
            }),
        }
    }

    /// The shards of a sharded version as one model, shard after shard
    /// (for the work that needs every series: backtests, observations).
    pub fn merge(parts: &[std::sync::Arc<LoadedModel>]) -> Self {
        let series = parts
            .iter()
            .flat_map(|p| p.series.iter().cloned())
            .collect();
        let mut model = Self::new(series);
        model.spec = parts.iter().find_map(|p| p.spec.clone());
        model.inputs = parts
            .iter()
            .flat_map(|p| p.inputs.iter().cloned())
            .collect();
        model
    }

    /// An estimate of the heap bytes this model holds, which is what the
    /// cache weighs it by (see [`crate::heap`]): the fitted models and
    /// their vectors, the series ids (kept twice: in `series` and as the
    /// index's keys), the index's table and the training series. O(series):
    /// computed once, when the model is cached.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let series = self.series.capacity() * size_of::<(String, FittedModel)>()
            + self
                .series
                .iter()
                .map(|(id, fitted)| heap::heap_bytes(id) + heap::heap_bytes(fitted))
                .sum::<usize>();
        // hashbrown: a bucket per 7/8 of capacity, each an entry and a control byte.
        let index = self.index.capacity() * 8 / 7 * (size_of::<(String, usize)>() + 1)
            + self.index.keys().map(heap::heap_bytes).sum::<usize>();
        let inputs = self.inputs.capacity() * size_of::<NamedSeries>()
            + self
                .inputs
                .iter()
                // Values as `f64`s (their serde form is of options).
                .map(|s| heap::heap_bytes(&s.id) + s.values.len() * 8 + heap::ALLOCATION)
                .sum::<usize>();
        size_of::<Self>() + series + index + inputs + heap::heap_bytes(&self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Horizon, Level, Method, ModelSpec, SeriesData};
    use std::path::PathBuf;

    /// Every series of `inputs` fitted by `spec`, kept with its inputs.
    fn fitted(spec: ModelSpec, inputs: Vec<NamedSeries>) -> LoadedModel {
        let fits = inputs
            .iter()
            .map(|s| (s.id.clone(), spec.fit(&s.values).expect("fit")))
            .collect();
        LoadedModel::new(fits).with_inputs(spec, inputs)
    }

    /// The fixed fit of the golden files: two seasonal series.
    fn golden_model(method: Method) -> LoadedModel {
        let series = |phase: usize| {
            let values: Vec<f64> = (0..48)
                .map(|t| {
                    20.0 + 0.5 * t as f64
                        + [3.0, -1.0, 2.0, -4.0][(t + phase) % 4]
                        + ((t * 7 + phase) % 5) as f64 * 0.3
                })
                .collect();
            SeriesData::parse(values).expect("series")
        };
        let spec = ModelSpec::new(method, Some(4));
        let inputs: Vec<NamedSeries> = [("a", 0), ("b", 1)]
            .into_iter()
            .map(|(id, phase)| NamedSeries {
                id: id.to_string(),
                values: series(phase),
                calendar: None,
                index: None,
            })
            .collect();
        fitted(spec, inputs)
    }

    /// States of layout 1 (no training series kept; the golden files of that
    /// layout) are read, forecast like today's fit, and have no inputs.
    #[test]
    fn states_of_layout_1_are_read() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/state1");
        let (h, levels) = (
            Horizon::parse(6).expect("h"),
            [Level::parse(90.0).expect("l")],
        );
        let mut read = 0;
        for method in Method::ALL {
            let path = dir.join(format!("{}.bin", method.name()));
            if method == Method::Dhr {
                continue; // added after layout 1: no file of that layout
            }
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let old =
                LoadedModel::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(old.inputs().is_empty() && old.spec().is_none());
            // Read again through today's layout, it forecasts the same; its
            // means are today's fit's (intervals may differ where the
            // calibration changed since the file was written).
            let again = LoadedModel::decode(&old.encode().expect("encode")).expect("decode");
            let today = golden_model(method);
            for i in 0..old.len() {
                let forecast = old.get(i).1.forecast(h, &levels);
                assert_eq!(forecast, again.get(i).1.forecast(h, &levels), "{method}");
                assert_eq!(
                    forecast.mean,
                    today.get(i).1.forecast(h, &levels).mean,
                    "{method}"
                );
            }
            read += 1;
        }
        assert_eq!(read, Method::ALL.len() - 1);
    }

    /// States of layout 2 (training series kept, no integer axes) are read
    /// with their inputs, forecast the same read again through today's
    /// layout, and their means are today's fit's (intervals may differ where
    /// the calibration changed since the file was written).
    #[test]
    fn states_of_layout_2_are_read() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/state2");
        let (h, levels) = (
            Horizon::parse(6).expect("h"),
            [Level::parse(90.0).expect("l")],
        );
        for method in Method::ALL {
            let path = dir.join(format!("{}.bin", method.name()));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let old =
                LoadedModel::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let today = golden_model(method);
            assert_eq!(old.spec(), today.spec(), "{method}");
            assert_eq!(old.inputs(), today.inputs(), "{method}");
            let again = LoadedModel::decode(&old.encode().expect("encode")).expect("decode");
            for i in 0..old.len() {
                let forecast = old.get(i).1.forecast(h, &levels);
                assert_eq!(forecast, again.get(i).1.forecast(h, &levels), "{method}");
                // DHR's fit of an even season changed since (it now takes
                // the harmonic m/2): the stored model still forecasts as
                // stored, just not as today's fit.
                if method != Method::Dhr {
                    assert_eq!(
                        forecast.mean,
                        today.get(i).1.forecast(h, &levels).mean,
                        "{method}"
                    );
                }
            }
        }
    }

    fn golden_path(method: Method) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("{}.bin", method.name()))
    }

    #[test]
    fn golden_files_match_the_encoding_of_every_method() {
        let bless = std::env::var("HORIZON_BLESS").is_ok_and(|v| v == "1");
        for method in Method::ALL {
            let model = golden_model(method);
            let bytes = model.encode().expect("encode");
            let path = golden_path(method);
            if bless {
                std::fs::create_dir_all(path.parent().expect("parent")).expect("golden dir");
                std::fs::write(&path, &bytes).expect("write golden file");
                continue;
            }
            let golden = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; generate with HORIZON_BLESS=1 cargo test -p worker --lib golden",
                    path.display()
                )
            });
            assert!(
                golden == bytes,
                "the encoding of {method} changed: bump STATE_FORMAT or engine::FORMAT_VERSION, \
                 keep a reader for the old layout (see the module's doc), then regenerate the \
                 golden files with HORIZON_BLESS=1 cargo test -p worker --lib golden"
            );
            // The stored bytes decode to a model forecasting like the fit.
            let back = LoadedModel::decode(&golden).expect("decode golden");
            let (h, levels) = (
                Horizon::parse(6).expect("h"),
                [Level::parse(90.0).expect("l")],
            );
            for i in 0..model.len() {
                assert_eq!(
                    back.get(i).1.forecast(h, &levels),
                    model.get(i).1.forecast(h, &levels)
                );
            }
        }
    }

    /// States written by engine format 2 (the golden files of that layout)
    /// are read and forecast like today's fit of the same data (within 5%:
    /// format 3 fits on the scaled series, which moves optimisers slightly).
    #[test]
    fn states_of_engine_format_2_are_read() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v2");
        let (h, levels) = (
            Horizon::parse(6).expect("h"),
            [Level::parse(90.0).expect("l")],
        );
        let mut read = 0;
        for method in Method::ALL {
            let path = dir.join(format!("{}.bin", method.name()));
            let Ok(bytes) = std::fs::read(&path) else {
                continue; // a method added after format 2
            };
            let old =
                LoadedModel::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let today = golden_model(method);
            assert_eq!(old.len(), today.len());
            for i in 0..old.len() {
                let (a, b) = (
                    old.get(i).1.forecast(h, &levels),
                    today.get(i).1.forecast(h, &levels),
                );
                for (x, y) in a.mean.iter().zip(&b.mean) {
                    assert!(x.is_finite());
                    assert!(
                        (x - y).abs() <= 0.05 * y.abs().max(1.0),
                        "{method}: format 2 forecasts {x}, today {y}"
                    );
                }
            }
            read += 1;
        }
        assert_eq!(read, 13, "every method of format 2 has a golden file");
    }

    #[test]
    fn a_state_from_a_newer_build_is_not_a_verdict() {
        let model = golden_model(Method::Naive);
        let mut newer = postcard::to_stdvec(&(STATE_FORMAT + 1, engine::FORMAT_VERSION)).unwrap();
        newer.extend_from_slice(&model.encode().unwrap()[2..]);
        let e = LoadedModel::decode(&newer).unwrap_err();
        assert!(e.is_newer(), "{e}");
        let mut engine_newer =
            postcard::to_stdvec(&(STATE_FORMAT, engine::FORMAT_VERSION + 1)).unwrap();
        engine_newer.extend_from_slice(&model.encode().unwrap()[2..]);
        assert!(LoadedModel::decode(&engine_newer).unwrap_err().is_newer());
        // An older one is refused, as a verdict.
        let older = postcard::to_stdvec(&(0u32, engine::FORMAT_VERSION)).unwrap();
        let e = LoadedModel::decode(&older).unwrap_err();
        assert!(!e.is_newer(), "{e}");
    }

    /// `n` series of `points` points fitted by ETS, kept with their inputs.
    fn ets_model(n: usize, points: usize) -> LoadedModel {
        let spec = ModelSpec::new(Method::Ets, Some(4));
        let inputs: Vec<NamedSeries> = (0..n)
            .map(|i| NamedSeries {
                id: format!("series-{i}"),
                values: SeriesData::parse(
                    (0..points)
                        .map(|t| 50.0 + (t % 4) as f64 * 3.0 + ((t * 7 + i) % 5) as f64)
                        .collect(),
                )
                .expect("series"),
                calendar: None,
                index: None,
            })
            .collect();
        fitted(spec, inputs)
    }

    /// The cache's weight of a model grows with its series and their
    /// points, and is never below what the model's encoding holds (the
    /// decoded form holds all of it, and more).
    #[test]
    fn the_estimated_bytes_grow_with_series_and_points() {
        let (few, many, longer) = (ets_model(4, 24), ets_model(8, 24), ets_model(4, 96));
        let bytes = |m: &LoadedModel| m.heap_bytes();
        for m in [&few, &many, &longer] {
            let encoded = m.encode().expect("encode").len();
            assert!(bytes(m) >= encoded, "{} < {encoded} encoded", bytes(m));
        }
        // Twice the series, about twice the bytes.
        assert!(
            bytes(&many) > bytes(&few) * 17 / 10,
            "{} vs {}",
            bytes(&many),
            bytes(&few)
        );
        // 72 more points in each of 4 series: at least their f64s.
        assert!(
            bytes(&longer) >= bytes(&few) + 4 * 72 * 8,
            "{} vs {}",
            bytes(&longer),
            bytes(&few)
        );
    }

    /// Bytes allocated and not freed by this thread (a test's own work,
    /// whatever the other tests' threads do meanwhile).
    mod counted {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            // Const, without a destructor: usable from the allocator.
            static LIVE: Cell<isize> = const { Cell::new(0) };
        }

        fn add(n: isize) {
            let _ = LIVE.try_with(|live| live.set(live.get() + n));
        }

        pub fn live() -> isize {
            LIVE.with(Cell::get)
        }

        struct Counting;

        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                add(layout.size() as isize);
                System.alloc(layout)
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                add(-(layout.size() as isize));
                System.dealloc(ptr, layout)
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
                add(size as isize - layout.size() as isize);
                System.realloc(ptr, layout, size)
            }
        }

        #[global_allocator]
        static COUNTING: Counting = Counting;
    }

    /// The estimate is honest: never below the bytes a decoded model keeps
    /// allocated (the allocator's own overhead comes on top of those), and
    /// not far above them.
    #[test]
    fn the_estimated_bytes_are_what_a_decoded_model_keeps() {
        for method in [Method::Naive, Method::Ets, Method::Theta] {
            let bytes = {
                let spec = ModelSpec::new(method, Some(4));
                let inputs: Vec<NamedSeries> = (0..50)
                    .map(|i| NamedSeries {
                        id: format!("s{i}"),
                        values: SeriesData::with_gaps(
                            (0..60)
                                .map(|t| (t != 7).then_some(20.0 + ((t * 3 + i) % 9) as f64))
                                .collect(),
                        )
                        .expect("series"),
                        calendar: None,
                        index: None,
                    })
                    .collect();
                fitted(spec, inputs).encode().expect("encode")
            };
            let before = counted::live();
            let model = LoadedModel::decode(&bytes).expect("decode");
            let kept = usize::try_from(counted::live() - before).expect("allocated");
            let estimate = model.heap_bytes();
            assert!(
                estimate >= kept && estimate <= kept * 3 / 2,
                "{method}: estimated {estimate} bytes, the decode keeps {kept}"
            );
        }
    }

    #[test]
    fn round_trips_and_refuses_garbage() {
        let y = SeriesData::parse(vec![1.0, 2.0, 4.0, 3.0]).unwrap();
        let fitted = ModelSpec::new(Method::Naive, None).fit(&y).unwrap();
        let model = LoadedModel::new(vec![("a".into(), fitted.clone())]);
        let back = LoadedModel::decode(&model.encode().unwrap()).unwrap();
        assert_eq!(back.len(), 1);
        let kept = LoadedModel::new(vec![("a".into(), fitted.clone())]).with_inputs(
            ModelSpec::new(Method::Naive, None),
            vec![NamedSeries {
                id: "a".into(),
                values: y.clone(),
                calendar: None,
                index: Some(IndexAxis { last: 16, step: 4 }),
            }],
        );
        let again = LoadedModel::decode(&kept.encode().unwrap()).unwrap();
        assert_eq!(again.inputs()[0].values, y);
        assert_eq!(
            again.inputs()[0].index,
            Some(IndexAxis { last: 16, step: 4 })
        );
        assert_eq!(again.spec(), Some(&ModelSpec::new(Method::Naive, None)));
        assert_eq!(back.position("a"), Some(0));
        assert_eq!(back.get(0).1, &fitted);
        assert!(LoadedModel::decode(b"").is_err());
        assert!(matches!(
            LoadedModel::decode(&[9, 3, 0]),
            Err(StateError::Format { found: 9, .. })
        ));
    }
}
