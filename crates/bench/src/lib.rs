//! Accuracy and speed benchmark of the engine on long-format competition data
//! (M3 and alike): fit every series, forecast, score.
