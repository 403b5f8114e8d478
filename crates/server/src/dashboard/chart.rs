//! A requests/errors bar chart, drawn on the server as SVG: no script, nothing to load, and
//! the same picture in every browser. Each bucket is a bar of requests with its errors drawn
//! over its foot; the numbers are in each bar's `<title>` and in the caption.

use brine_proto::SeriesPoint;

use super::view::when;

/// The drawing area, in SVG user units (the SVG scales to its box).
pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 160.0;

pub struct Bar {
    pub x: String,
    pub width: String,
    /// Top of the requests bar and its height.
    pub y: String,
    pub height: String,
    pub error_y: String,
    pub error_height: String,
    /// What a pointer or a screen reader gets: "14:05 UTC: 12 requests, 1 error".
    pub label: String,
}

pub struct Chart {
    pub bars: Vec<Bar>,
    /// The largest bucket, which the top of the chart stands for.
    pub peak: i64,
    pub first: String,
    pub last: String,
    /// One sentence for the caption and the image's description.
    pub summary: String,
}

/// The chart of `points` (one per bucket, in order), whose buckets are `bucket` wide
/// ("minute", "hour" or "day").
pub fn chart(points: &[SeriesPoint], bucket: &str) -> Chart {
    let peak = points.iter().map(|p| p.requests).max().unwrap_or(0);
    let requests: i64 = points.iter().map(|p| p.requests).sum();
    let errors: i64 = points.iter().map(|p| p.errors).sum();
    let slot = WIDTH / points.len().max(1) as f64;
    // A gap between bars while they are wide enough to show one.
    let gap = if slot >= 4.0 { slot * 0.2 } else { 0.0 };
    let scale = |n: i64| {
        if peak == 0 {
            0.0
        } else {
            HEIGHT * n as f64 / peak as f64
        }
    };
    let now = crate::clock::now_ms();
    let moment = |p: &SeriesPoint| when(p.start, now).exact;
    let bars = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.requests > 0)
        .map(|(i, p)| {
            let (h, eh) = (scale(p.requests), scale(p.errors.min(p.requests)));
            Bar {
                x: format!("{:.2}", i as f64 * slot + gap / 2.0),
                width: format!("{:.2}", (slot - gap).max(0.5)),
                y: format!("{:.2}", HEIGHT - h),
                height: format!("{h:.2}"),
                error_y: format!("{:.2}", HEIGHT - eh),
                error_height: format!("{eh:.2}"),
                label: format!(
                    "{} ({bucket}): {} request{}, {} error{}",
                    moment(p),
                    p.requests,
                    plural(p.requests),
                    p.errors,
                    plural(p.errors)
                ),
            }
        })
        .collect();
    let first = points.first().map(&moment).unwrap_or_default();
    let last = points.last().map(&moment).unwrap_or_default();
    let summary = if requests == 0 {
        format!("No requests from {first} to {last}.")
    } else {
        format!(
            "{requests} request{} and {errors} error{} from {first} to {last}, by {bucket}; \
             the busiest {bucket} had {peak}.",
            plural(requests),
            plural(errors)
        )
    };
    Chart {
        bars,
        peak,
        first,
        last,
        summary,
    }
}

fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(minute: i64, requests: i64, errors: i64) -> SeriesPoint {
        SeriesPoint {
            start: time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + minute * 60).unwrap(),
            requests,
            errors,
        }
    }

    #[test]
    fn the_busiest_bucket_fills_the_height_and_errors_sit_at_the_foot() {
        let c = chart(&[point(0, 10, 0), point(1, 0, 0), point(2, 5, 5)], "minute");
        assert_eq!(c.peak, 10);
        assert_eq!(c.bars.len(), 2, "empty buckets draw nothing");
        assert_eq!(c.bars[0].height, format!("{HEIGHT:.2}"));
        assert_eq!(c.bars[0].error_height, "0.00");
        assert_eq!(c.bars[1].height, c.bars[1].error_height);
        assert_eq!(c.bars[1].y, format!("{:.2}", HEIGHT / 2.0));
        assert!(
            c.bars[1].label.ends_with("5 requests, 5 errors"),
            "{}",
            c.bars[1].label
        );
        assert!(c.summary.starts_with("15 requests and 5 errors"));
    }

    #[test]
    fn an_empty_range_says_so() {
        let c = chart(&[point(0, 0, 0)], "hour");
        assert!(c.bars.is_empty());
        assert!(c.summary.starts_with("No requests"));
    }
}
