//! Sparklines: a pod's recent use drawn as a small inline SVG, rendered on the server (no script, no charting library,
//! nothing the page's Content-Security-Policy forbids: no inline style, the stroke comes from the style sheet). The
//! line runs from the oldest sample (left) to the newest (right) over a baseline of zero, so that its height is the
//! use itself; the highest value is written above it, and the title (read by screen readers and shown on hover)
//! says the latest, highest and lowest values in words.

use askama::Template;

/// The box's width, in SVG user units (and CSS pixels); it is 40 high (see `sparkline.html`).
const WIDTH: f64 = 160.0;
/// Room on the left and right, so that a dot at either end is not cut.
const SIDE: f64 = 2.0;
/// Where the line may rise to: below the label of the highest value.
const TOP: f64 = 12.0;
/// The baseline (zero).
const BOTTOM: f64 = 38.0;

/// One sparkline, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Sparkline {
    /// The polyline's points, `x,y` pairs in the box (empty when there is one sample: it is a dot).
    pub points: String,
    /// The one sample, when there is only one.
    pub dot: Option<Dot>,
    /// The highest value, in words (written above the line).
    pub max_label: String,
    /// What the line shows, in words: the title and accessible name.
    pub title: String,
}

/// A single sample's place in the box.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    /// Its x.
    pub x: String,
    /// Its y.
    pub y: String,
}

/// The words of a sparkline's title.
pub struct Words<'a> {
    /// What is drawn (`CPU`, `Memory`).
    pub what: &'a str,
    /// Over when (`last hour`).
    pub span: &'a str,
    /// `now`, `highest`, `lowest`, `samples`.
    pub now: &'a str,
    /// The word for the highest value.
    pub max: &'a str,
    /// The word for the lowest value.
    pub min: &'a str,
    /// The word for the number of samples.
    pub samples: &'a str,
}

/// The SVG of a sparkline.
#[derive(Template)]
#[template(path = "sparkline.html", config = "src/dashboard/askama.toml")]
pub struct SparklineSvg<'a> {
    /// The sparkline.
    pub spark: &'a Sparkline,
}

/// The sparkline of `samples` (seconds since any fixed instant, and a value; oldest first), each value written with
/// `label`; `None` when there is no sample.
pub fn draw(samples: &[(f64, u64)], label: impl Fn(u64) -> String, words: &Words<'_>) -> Option<Sparkline> {
    let (first, last) = (samples.first()?, samples.last()?);
    let max = samples.iter().map(|(_, value)| *value).max().unwrap_or(0);
    let min = samples.iter().map(|(_, value)| *value).min().unwrap_or(0);
    let span = last.0 - first.0;
    let x = |at: f64| if span > 0.0 { SIDE + (at - first.0) / span * (WIDTH - 2.0 * SIDE) } else { WIDTH - SIDE };
    // Values are drawn against zero: a flat line at the top is a steady use, at the bottom none.
    #[allow(clippy::cast_precision_loss)]
    let y = |value: u64| if max == 0 { BOTTOM } else { BOTTOM - value as f64 / max as f64 * (BOTTOM - TOP) };
    let place = |(at, value): &(f64, u64)| (format!("{:.1}", x(*at)), format!("{:.1}", y(*value)));
    let (points, dot) = if samples.len() == 1 {
        let (x, y) = place(first);
        (String::new(), Some(Dot { x, y }))
    } else {
        let points: Vec<String> = samples.iter().map(place).map(|(x, y)| format!("{x},{y}")).collect();
        (points.join(" "), None)
    };
    let title = format!(
        "{}, {}: {} {}, {} {}, {} {} ({}: {})",
        words.what,
        words.span,
        words.now,
        label(last.1),
        words.max,
        label(max),
        words.min,
        label(min),
        words.samples,
        samples.len()
    );
    Some(Sparkline { points, dot, max_label: label(max), title })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: Words<'static> =
        Words { what: "CPU", span: "last hour", now: "now", max: "highest", min: "lowest", samples: "samples" };

    fn millicores(value: u64) -> String {
        format!("{value}m")
    }

    fn coordinates(points: &str) -> Vec<(f64, f64)> {
        points
            .split(' ')
            .map(|pair| {
                let (x, y) = pair.split_once(',').expect("x,y");
                (x.parse().expect("x"), y.parse().expect("y"))
            })
            .collect()
    }

    #[test]
    fn points_are_scaled_into_the_box_oldest_left_newest_right_against_zero() {
        let samples = [(100.0, 0), (130.0, 500), (160.0, 1000), (400.0, 250)];
        let spark = draw(&samples, millicores, &WORDS).expect("drawn");
        assert_eq!(spark.points, "2.0,38.0 17.6,25.0 33.2,12.0 158.0,31.5");
        for (x, y) in coordinates(&spark.points) {
            assert!((SIDE..=WIDTH - SIDE).contains(&x) && (TOP..=BOTTOM).contains(&y), "{x},{y} in the box");
        }
        assert_eq!(spark.dot, None);
        assert_eq!(spark.max_label, "1000m", "the highest value is labelled");
        assert_eq!(spark.title, "CPU, last hour: now 250m, highest 1000m, lowest 0m (samples: 4)");
    }

    #[test]
    fn one_sample_is_a_dot_at_the_newest_end() {
        let spark = draw(&[(5.0, 300)], millicores, &WORDS).expect("drawn");
        assert_eq!((spark.points.as_str(), spark.dot), ("", Some(Dot { x: "158.0".into(), y: "12.0".into() })));
        assert_eq!(spark.title, "CPU, last hour: now 300m, highest 300m, lowest 300m (samples: 1)");
    }

    #[test]
    fn equal_values_are_a_flat_line_at_the_top_and_zeros_one_on_the_baseline() {
        let steady = draw(&[(0.0, 700), (15.0, 700), (30.0, 700)], millicores, &WORDS).expect("drawn");
        assert_eq!(steady.points, "2.0,12.0 80.0,12.0 158.0,12.0");
        let idle = draw(&[(0.0, 0), (15.0, 0)], millicores, &WORDS).expect("drawn");
        assert_eq!(idle.points, "2.0,38.0 158.0,38.0", "no use is no height, not a division by zero");
        assert_eq!(idle.max_label, "0m");
        let same_instant = draw(&[(7.0, 1), (7.0, 2)], millicores, &WORDS).expect("drawn");
        assert_eq!(same_instant.points, "158.0,25.0 158.0,12.0", "no time between samples: no division by zero");
    }

    #[test]
    fn no_sample_draws_nothing() {
        assert_eq!(draw(&[], millicores, &WORDS), None);
    }

    #[test]
    fn the_svg_has_an_accessible_title_the_label_and_no_inline_style() {
        let mut spark = draw(&[(0.0, 100), (60.0, 1020)], millicores, &WORDS).expect("drawn");
        spark.title.push_str(" <script>");
        let svg = SparklineSvg { spark: &spark }.render().expect("renders");
        assert!(svg.starts_with(r#"<svg class="sparkline" viewBox="0 0 160 40" width="160" height="40" role="img""#));
        assert!(svg.contains(r#"<polyline points="2.0,35.5 158.0,12.0" fill="none" stroke="currentColor"/>"#), "{svg}");
        assert!(
            svg.contains(
                "<title>CPU, last hour: now 1020m, highest 1020m, lowest 100m (samples: 2) &#60;script&#62;</title>"
            ) || svg.contains("&lt;script&gt;</title>"),
            "{svg}"
        );
        assert!(svg.contains(r#"aria-label="CPU, last hour: now 1020m"#), "{svg}");
        assert!(svg.contains(r#"<text class="spark-max" x="2" y="9">1020m</text>"#), "{svg}");
        assert!(!svg.contains("style") && !svg.contains("<script"), "{svg}");
        let dot = draw(&[(0.0, 5)], millicores, &WORDS).expect("drawn");
        let svg = SparklineSvg { spark: &dot }.render().expect("renders");
        assert!(
            svg.contains(r#"<circle cx="158.0" cy="12.0" r="2" fill="currentColor"/>"#) && !svg.contains("polyline")
        );
    }
}
