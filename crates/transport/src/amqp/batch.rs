//! The wire format of forecast batches.
//!
//! Forecasts travel in batches: the gateway puts every forecast waiting to be
//! sent into one message (see `AmqpTransport`), a worker answers the
//! forecasts of a message that finish together with one reply (usually all of
//! them). Under load that is one publish, one delivery and one reply for many
//! forecasts, which is where the broker and lapin spend
//! their time; when idle a batch holds one forecast and nothing waits for it.
//!
//! A batch message has the AMQP `type` [`BATCH_KIND`] and a JSON array body,
//! `[{"id": "17", "body": <ForecastJob>}, ...]`; its reply has the same
//! type and `[{"id": "17", "body": <ForecastReply>}, ...]`. An error reply
//! (a dead-lettered batch) carries [`super::ERROR_HEADER`] and the batch's
//! own body back, so the gateway learns which requests it answers.

use lapin::protocol::basic::AMQPProperties;
use serde::{Deserialize, Serialize};

/// AMQP `type` property of a forecast batch and of its reply.
pub const BATCH_KIND: &str = "horizon.forecast-batch";

/// Whether a message is a forecast batch (or a batch's reply).
pub(super) fn is_batch(props: &AMQPProperties) -> bool {
    props.kind().as_ref().map(|k| k.as_str()) == Some(BATCH_KIND)
}

/// One request or answer in a batch, with the correlation id of its request.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Tagged<T> {
    pub id: String,
    pub body: T,
}

/// Encodes a batch.
pub(super) fn encode<T: Serialize>(items: &[Tagged<T>]) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(items)
}

/// Decodes a batch, each body as `T`.
pub(super) fn decode<'a, T: Deserialize<'a>>(data: &'a [u8]) -> serde_json::Result<Vec<Tagged<T>>> {
    serde_json::from_slice(data)
}

/// The correlation ids of a batch, whatever its bodies hold.
pub(super) fn ids(data: &[u8]) -> serde_json::Result<Vec<String>> {
    let items: Vec<Tagged<serde::de::IgnoredAny>> = serde_json::from_slice(data)?;
    Ok(items.into_iter().map(|t| t.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    #[test]
    fn a_batch_round_trips_and_names_its_ids() {
        let items: Vec<Tagged<Box<RawValue>>> = vec![
            Tagged {
                id: "1".to_string(),
                body: serde_json::value::to_raw_value(&serde_json::json!({"h": 3})).expect("raw"),
            },
            Tagged {
                id: "2".to_string(),
                body: serde_json::value::to_raw_value(&[1.5, 2.5]).expect("raw"),
            },
        ];
        let data = encode(&items).expect("encode");
        assert_eq!(ids(&data).expect("ids"), vec!["1", "2"]);
        let back: Vec<Tagged<serde_json::Value>> = decode(&data).expect("decode");
        assert_eq!(back[0].body["h"], 3);
        assert_eq!(back[1].body, serde_json::json!([1.5, 2.5]));
        assert!(ids(b"{\"id\": 1}").is_err());
    }
}
