//! `GET /metrics` (Prometheus text exposition format 0.0.4) and `GET /healthz`.
//!
//! The figures are those of [`Hub::stats`](crate::Hub::stats), for the current
//! generation. Counters restart at a reset, which Prometheus treats as a
//! counter reset (`rate()` handles it); `ssehub_generation` says when.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::Stats;

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    #[allow(unused_mut)]
    let mut text = render(&state.hub.stats(), state.hub.parked_readers());
    #[cfg(feature = "cluster")]
    if let Some(cluster) = &state.cluster {
        render_cluster(&cluster.stats(), &mut text);
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// `GET /healthz`.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Renders `stats` as Prometheus text.
pub fn render(stats: &Stats, parked: usize) -> String {
    let figures: [(&str, &str, &str, u64); 11] = [
        (
            "ssehub_active_subscribers",
            "gauge",
            "Subscriptions open now.",
            stats.active_subscribers as u64,
        ),
        (
            "ssehub_subscribers_total",
            "counter",
            "Subscriptions opened in this generation.",
            stats.total_subscribers,
        ),
        (
            "ssehub_published_events_total",
            "counter",
            "Events published in this generation.",
            stats.published,
        ),
        (
            "ssehub_lagged_disconnects_total",
            "counter",
            "Subscriptions ended because they fell behind, in this generation.",
            stats.lagged_disconnects,
        ),
        (
            "ssehub_generation",
            "gauge",
            "Generation number (1 at start, +1 per reset).",
            stats.generation,
        ),
        (
            "ssehub_ring_capacity_events",
            "gauge",
            "Ring slots.",
            stats.ring.capacity as u64,
        ),
        (
            "ssehub_ring_events",
            "gauge",
            "Events retained in the ring.",
            stats.ring.len,
        ),
        (
            "ssehub_ring_bytes",
            "gauge",
            "Encoded frame bytes retained in the ring.",
            stats.ring.bytes,
        ),
        (
            "ssehub_ring_max_bytes",
            "gauge",
            "The ring's byte budget.",
            stats.ring.max_bytes,
        ),
        (
            "ssehub_parked_readers",
            "gauge",
            "Subscribers caught up and waiting for events.",
            parked as u64,
        ),
        ("ssehub_up", "gauge", "1 while the server runs.", 1),
    ];
    let mut out = String::with_capacity(2048);
    write_figures(&figures, &mut out);
    out
}

/// Appends each `(name, kind, help, value)` in the exposition format.
fn write_figures(figures: &[(&str, &str, &str, u64)], out: &mut String) {
    let mut digits = itoa::Buffer::new();
    for &(name, kind, help, value) in figures {
        for part in [
            "# HELP ",
            name,
            " ",
            help,
            "\n# TYPE ",
            name,
            " ",
            kind,
            "\n",
            name,
            " ",
            digits.format(value),
            "\n",
        ] {
            out.push_str(part);
        }
    }
}

/// Appends the cluster's figures (cluster mode) to a rendering.
#[cfg(feature = "cluster")]
pub fn render_cluster(stats: &crate::cluster::ClusterStats, out: &mut String) {
    let figures: [(&str, &str, &str, u64); 6] = [
        (
            "ssehub_cluster_connected",
            "gauge",
            "1 while this node's tail reaches the cluster backend.",
            u64::from(stats.connected),
        ),
        (
            "ssehub_cluster_generation",
            "gauge",
            "Generations the cluster backend has started.",
            stats.generation,
        ),
        (
            "ssehub_cluster_published_events_total",
            "counter",
            "Events published in the cluster's current generation.",
            stats.published,
        ),
        (
            "ssehub_cluster_retained_events",
            "gauge",
            "Events the cluster backend retains.",
            stats.retained,
        ),
        (
            "ssehub_cluster_retained_bytes",
            "gauge",
            "Bytes the cluster backend retains.",
            stats.retained_bytes,
        ),
        (
            "ssehub_cluster_lag_events",
            "gauge",
            "Events in the backend that this node's ring does not hold yet.",
            stats.lag,
        ),
    ];
    write_figures(&figures, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hub;

    #[test]
    fn every_sample_has_help_and_type() {
        let text = render(&Hub::new().stats(), 0);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 11);
        for sample in samples {
            let name = sample.split(' ').next().unwrap();
            assert!(text.contains(&format!("# HELP {name} ")));
            assert!(text.contains(&format!("# TYPE {name} ")));
        }
        assert!(text.contains("ssehub_generation 1\n"));
    }
}
