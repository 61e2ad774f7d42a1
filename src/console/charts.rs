//! The overview's charts: small SVG bar charts written by hand (no plotting crate: a chart
//! here is a few dozen rectangles, and hand-written SVG needs no fonts, no inline styles for
//! the CSP to refuse, and no dependency). Each chart is drawn from the numbers its table and
//! CSV show, labels escaped; it is `role="img"` with a title, and the table beside it is what a
//! screen reader reads.
//!
//! Must not: compute a metric. It draws the values it is given.

use std::fmt::Write;

/// One series of values, one per label.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<i64>,
}

const WIDTH: i64 = 640;
const HEIGHT: i64 = 240;
const LEFT: i64 = 70;
const BOTTOM: i64 = 40;
const TOP: i64 = 20;
/// The series' colours, in order (distinguishable in greyscale too).
const COLOURS: [&str; 6] = [
    "#1d3b2a", "#c47f00", "#5b7fa6", "#8a1c1c", "#7a6a9c", "#6b8e23",
];

/// Grouped bars: for each label, one bar per series, around a zero line (negative values go
/// down). `unit` formats an axis value (e.g. minor units as money).
pub fn bars(
    title: &str,
    labels: &[String],
    series: &[Series<'_>],
    unit: &dyn Fn(i64) -> String,
) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter())
        .fold(0i64, |m, v| m.max(*v));
    let min = series
        .iter()
        .flat_map(|s| s.values.iter())
        .fold(0i64, |m, v| m.min(*v));
    let span = (max - min).max(1);
    let plot_height = HEIGHT - TOP - BOTTOM;
    let y = |v: i64| TOP + (max - v) * plot_height / span;
    let plot_width = WIDTH - LEFT - 10;
    let groups = labels.len().max(1) as i64;
    let group_width = plot_width / groups;
    let bar_width = ((group_width - 6) / series.len().max(1) as i64).max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-labelledby="chart-{id}"><title id="chart-{id}">{title}</title>"#,
        id = slug(title),
        title = escape(title),
    );
    // The axis: zero, the top and the bottom values.
    for value in [max, 0, min] {
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{WIDTH}" y1="{y}" y2="{y}" stroke="#c9c2b3" stroke-width="1"/><text x="{tx}" y="{ty}" font-size="11" text-anchor="end" fill="#333">{label}</text>"##,
            y = y(value),
            tx = LEFT - 4,
            ty = y(value) + 4,
            label = escape(&unit(value)),
        );
        if min == 0 && value == 0 {
            break;
        }
    }
    for (g, label) in labels.iter().enumerate() {
        let x0 = LEFT + g as i64 * group_width + 3;
        for (k, s) in series.iter().enumerate() {
            let value = s.values.get(g).copied().unwrap_or(0);
            let (top, bottom) = if value >= 0 {
                (y(value), y(0))
            } else {
                (y(0), y(value))
            };
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{top}" width="{w}" height="{h}" fill="{fill}"><title>{name} {label}: {v}</title></rect>"#,
                x = x0 + k as i64 * bar_width,
                w = (bar_width - 1).max(1),
                h = (bottom - top).max(if value == 0 { 0 } else { 1 }),
                fill = COLOURS[k % COLOURS.len()],
                name = escape(s.name),
                label = escape(label),
                v = escape(&unit(value)),
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{x}" y="{ty}" font-size="11" text-anchor="middle" fill="#333">{label}</text>"##,
            x = x0 + group_width / 2,
            ty = HEIGHT - BOTTOM + 14,
            label = escape(label),
        );
    }
    // The legend, when there is more than one series.
    if series.len() > 1 {
        legend(&mut svg, series);
    }
    svg.push_str("</svg>");
    svg
}

/// Each series' colour and name, in a row under the chart.
fn legend(svg: &mut String, series: &[Series<'_>]) {
    for (k, s) in series.iter().enumerate() {
        let x = LEFT + k as i64 * 95;
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{ly}" width="10" height="10" fill="{fill}"/><text x="{tx}" y="{ty}" font-size="11" fill="#333">{name}</text>"##,
            ly = HEIGHT - 16,
            fill = COLOURS[k % COLOURS.len()],
            tx = x + 14,
            ty = HEIGHT - 7,
            name = escape(s.name),
        );
    }
}

/// Text made safe inside SVG (XML) text and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An id from a title: lower-case letters and digits, the rest as `-`.
fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(v: i64) -> String {
        v.to_string()
    }

    #[test]
    fn bars_are_as_tall_as_their_values() {
        let svg = bars(
            "MRR",
            &["2026-01".into(), "2026-02".into()],
            &[Series {
                name: "MRR",
                values: vec![100, 50],
            }],
            &plain,
        );
        // The plot is 180 px high from 0 to 100: 180 and 90 px bars.
        assert!(svg.contains(r#"height="180""#), "{svg}");
        assert!(svg.contains(r#"height="90""#), "{svg}");
        assert!(svg.contains("<title>MRR 2026-02: 50</title>"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn negative_values_go_below_zero() {
        let svg = bars(
            "Moves",
            &["m".into()],
            &[
                Series {
                    name: "new",
                    values: vec![30],
                },
                Series {
                    name: "churned",
                    values: vec![-60],
                },
            ],
            &plain,
        );
        // 0 sits a third of the way down (30 of a 90 span): y = 20 + 60.
        assert!(svg.contains(r#"y="80" width"#), "{svg}");
        assert!(svg.contains(r#"height="120""#), "{svg}");
        assert!(svg.contains(">churned</text>"), "a legend for two series");
    }

    #[test]
    fn labels_are_escaped() {
        let svg = bars(
            "<b>",
            &["<script>&".into()],
            &[Series {
                name: "\"x\"",
                values: vec![1],
            }],
            &plain,
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;&amp;"));
        assert!(svg.contains("&quot;x&quot;"));
        assert!(svg.contains("<title id=\"chart--b-\">&lt;b&gt;</title>"));
    }
}
