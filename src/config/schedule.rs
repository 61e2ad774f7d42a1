//! `[engine]` and `[reminders]`: when the sweep runs and renewals happen, in which zone, how
//! much it takes at once, and when reminders go out.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Layers, serialize_tz};
use crate::core::cron_schedule::CronSchedule;
use crate::core::renewal::CatchUp;
use crate::core::schedule::{DeliveryWindow, TimeOfDay, parse_time_zone};

#[derive(Debug, Clone, Serialize)]
pub struct EngineSettings {
    pub sweep: CronSchedule,
    #[serde(serialize_with = "serialize_tz")]
    pub time_zone: Tz,
    pub renewal_time: TimeOfDay,
    pub batch_size: u32,
    /// Batches in flight at once on PostgreSQL (SQLite always uses one).
    pub workers: u32,
    pub catch_up: CatchUp,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReminderSettings {
    pub lead_days: Vec<u32>,
    pub window: DeliveryWindow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    pub(super) sweep: String,
    pub(super) time_zone: String,
    pub(super) renewal_time: String,
    pub(super) batch_size: u32,
    pub(super) workers: u32,
    pub(super) catch_up: CatchUp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReminders {
    pub(super) lead_days: Vec<u32>,
    pub(super) window_start: String,
    pub(super) window_end: String,
}

/// `[engine]`, checked: a crontab, a time zone, a time of day, positive sizes.
pub(super) fn parse_engine(l: &Layers, raw: RawEngine) -> Result<EngineSettings, ConfigError> {
    let engine = EngineSettings {
        sweep: raw
            .sweep
            .parse()
            .map_err(|e: crate::core::cron_schedule::CronError| {
                l.field("engine.sweep", &raw.sweep, e.to_string())
            })?,
        time_zone: parse_time_zone(&raw.time_zone)
            .map_err(|e| l.field("engine.time_zone", &raw.time_zone, e.to_string()))?,
        renewal_time: l.time_of_day("engine.renewal_time", &raw.renewal_time)?,
        batch_size: l.positive("engine.batch_size", raw.batch_size)?,
        workers: l.positive("engine.workers", raw.workers)?,
        catch_up: raw.catch_up,
    };

    Ok(engine)
}

/// `[reminders]`, checked: a delivery window that ends after it starts.
pub(super) fn parse_reminders(
    l: &Layers,
    raw: RawReminders,
) -> Result<ReminderSettings, ConfigError> {
    let window = DeliveryWindow {
        start: l.time_of_day("reminders.window_start", &raw.window_start)?,
        end: l.time_of_day("reminders.window_end", &raw.window_end)?,
    };
    if window.start >= window.end {
        return Err(l.field(
            "reminders.window_end",
            &raw.window_end,
            format!(
                "must be later than reminders.window_start ({})",
                window.start
            ),
        ));
    }
    let reminders = ReminderSettings {
        lead_days: raw.lead_days,
        window,
    };

    Ok(reminders)
}
