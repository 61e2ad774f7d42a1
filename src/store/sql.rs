//! The `Store` implementation both SQL backends share, written once as a macro that each
//! backend module expands over its own database type. The statements are the same on
//! PostgreSQL and SQLite (`$N` parameters, `RETURNING`, partial indexes); what differs is
//! supplied by the expanding module:
//!
//! - `struct $store { pool, fail_before_commit: AtomicBool }` and `static MIGRATOR`;
//! - `BACKEND`, and the lock clauses `SUBSCRIPTION_LOCK`, `COUPON_LOCK` and `CLAIM_LOCK`
//!   (row locks with `SKIP LOCKED` on PostgreSQL; empty on SQLite, whose write transaction
//!   locks the whole database);
//! - `begin_write(pool)` (SQLite starts with `BEGIN IMMEDIATE`) and `update_subscriptions(tx,
//!   changes)`.
//!
//! A macro rather than generics: sqlx's per-type `Encode`/`Decode` bounds would have to be
//! spelled out for every value bound, on every function.

macro_rules! sql_store {
    ($store:ident, $db:ty) => {
        /// One subscription, inside a transaction (`lock` takes its row lock) or straight
        /// from the pool (one round trip, for reads that need no transaction).
        async fn load_subscription<'e>(
            executor: impl sqlx::Executor<'e, Database = $db>,
            id: i64,
            lock: bool,
        ) -> Result<Option<Subscription>, StoreError> {
            let sql = format!(
                "{SUBSCRIPTION_SELECT} WHERE s.id = $1{}",
                if lock { SUBSCRIPTION_LOCK } else { "" }
            );
            let record: Option<SubscriptionRecord> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(executor)
                .await?;
            record
                .map(SubscriptionRecord::into_subscription)
                .transpose()
        }

        async fn load_customer(
            tx: &mut Transaction<'static, $db>,
            id: i64,
        ) -> Result<Customer, StoreError> {
            let record: Option<CustomerRecord> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
            record
                .ok_or_else(|| StoreError::NotFound(format!("customer {id} does not exist")))?
                .into_customer()
        }

        /// Writes changes: orders (linked back by order number), their lines, events, outbox
        /// messages, and every subscription's new state.
        async fn write_changes(
            tx: &mut Transaction<'static, $db>,
            changes: &[Change],
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let orders: Vec<_> = changes.iter().flat_map(|c| &c.orders).collect();
            let mut order_ids: HashMap<String, i64> = HashMap::with_capacity(orders.len());
            for chunk in orders.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO orders (order_number, subscription_id, customer_id, cycle, plan_id, packs, \
                     quantity, currency, total_minor, tax_included_minor, tax_included_bp, tax_region, \
                     coupon_code, scheduled_for, created_at) ",
                );
                q.push_values(chunk, |mut row, o| {
                    row.push_bind(o.order_number.as_str())
                        .push_bind(o.subscription_id)
                        .push_bind(o.customer_id)
                        .push_bind(big(o.cycle))
                        .push_bind(o.plan.as_str())
                        .push_bind(big(o.packs))
                        .push_bind(big(o.quantity))
                        .push_bind(o.total.currency().code())
                        .push_bind(o.total.minor())
                        .push_bind(o.tax_included.map(|m| m.minor()))
                        .push_bind(o.tax_included_rate.map(|r| i64::from(r.get())))
                        .push_bind(o.tax_region.as_deref())
                        .push_bind(o.coupon_code.as_deref())
                        .push_bind(o.scheduled_for)
                        .push_bind(now);
                });
                q.push(" RETURNING id, order_number");
                let rows: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
                order_ids.extend(rows.into_iter().map(|(id, number)| (number, id)));
            }

            let lines: Vec<_> = orders
                .iter()
                .flat_map(|o| {
                    let id = order_ids[&o.order_number];
                    o.lines
                        .iter()
                        .enumerate()
                        .map(move |(i, l)| (id, i as i64, l))
                })
                .collect();
            for chunk in lines.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO order_lines (order_id, position, kind, label, amount_minor) ",
                );
                q.push_values(chunk, |mut row, (id, position, line)| {
                    row.push_bind(*id)
                        .push_bind(*position)
                        .push_bind(line.kind.as_str())
                        .push_bind(line.label.as_str())
                        .push_bind(line.amount.minor());
                });
                q.build().execute(&mut **tx).await?;
            }

            let events: Vec<_> = changes.iter().flat_map(|c| &c.events).collect();
            for chunk in events.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO subscription_events (subscription_id, kind, actor, at, cycle, detail) ",
                );
                q.push_values(chunk, |mut row, e| {
                    row.push_bind(e.subscription_id)
                        .push_bind(e.kind.as_str())
                        .push_bind(e.actor.0.as_str())
                        .push_bind(now)
                        .push_bind(e.cycle.map(big))
                        .push_bind(Json(&e.detail));
                });
                q.build().execute(&mut **tx).await?;
            }

            let messages: Vec<_> = changes.iter().flat_map(|c| &c.messages).collect();
            for chunk in messages.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO outbox (kind, recipient, subscription_id, order_id, cycle, lead_days, \
                     payload, status, last_error, next_attempt_at, created_at) ",
                );
                q.push_values(chunk, |mut row, m| {
                    row.push_bind(m.kind.as_str())
                        .push_bind(m.recipient.as_str())
                        .push_bind(m.subscription_id)
                        .push_bind(m.order_number.as_ref().map(|n| order_ids[n]))
                        .push_bind(m.cycle.map(big))
                        .push_bind(m.lead_days.map(big))
                        .push_bind(Json(&m.payload))
                        .push_bind(if m.suppressed.is_some() { "suppressed" } else { "pending" })
                        .push_bind(m.suppressed.as_deref())
                        .push_bind(m.deliver_at.unwrap_or(now))
                        .push_bind(now);
                });
                // A reminder another engine queued since this batch was claimed already stands
                // (its claim's NOT EXISTS ran on an older snapshot): the unique index keeps the
                // first, and this one is dropped rather than failing the batch.
                q.push(" ON CONFLICT DO NOTHING");
                q.build().execute(&mut **tx).await?;
            }

            update_subscriptions(tx, changes).await?;
            Ok(())
        }

        impl $store {
            async fn commit(&self, tx: Transaction<'static, $db>) -> Result<(), StoreError> {
                if self.fail_before_commit.swap(false, Ordering::SeqCst) {
                    tx.rollback().await?;
                    return Err(StoreError::Injected);
                }
                tx.commit().await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                BACKEND
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                MIGRATOR.run(&self.pool).await?;
                Ok(())
            }

            fn inject_failure_before_commit(&self) {
                self.fail_before_commit.store(true, Ordering::SeqCst);
            }

            async fn add_customer(
                &self,
                new: &NewCustomer,
                now: DateTime<Utc>,
            ) -> Result<Customer, StoreError> {
                let record: CustomerRecord = sqlx::query_as(INSERT_CUSTOMER)
                    .bind(new.email.as_str())
                    .bind(&new.name)
                    .bind(new.time_zone.name())
                    .bind(&new.locale)
                    .bind(&new.tax_region)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(conflict_as(|| {
                        format!(
                            "a customer with email {} already exists; see `subsave customers show {}`",
                            new.email, new.email
                        )
                    }))?;
                record.into_customer()
            }

            async fn customer(&self, id: i64) -> Result<Option<Customer>, StoreError> {
                let record: Option<CustomerRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1"
                )))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                record.map(CustomerRecord::into_customer).transpose()
            }

            async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>, StoreError> {
                let record: Option<CustomerRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE email = $1"
                )))
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await?;
                record.map(CustomerRecord::into_customer).transpose()
            }

            async fn customers(&self, limit: u32) -> Result<Vec<Customer>, StoreError> {
                let records: Vec<CustomerRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY id LIMIT $1"
                )))
                .bind(big(limit))
                .fetch_all(&self.pool)
                .await?;
                records
                    .into_iter()
                    .map(CustomerRecord::into_customer)
                    .collect()
            }

            async fn create_coupon(
                &self,
                new: &NewCoupon,
                now: DateTime<Utc>,
            ) -> Result<Coupon, StoreError> {
                let cols = coupon_columns(new.value, new.duration, new.currency);
                let record: CouponRecord = sqlx::query_as(INSERT_COUPON)
                    .bind(&new.code)
                    .bind(cols.percent_bp)
                    .bind(cols.amount_minor)
                    .bind(&cols.currency)
                    .bind(cols.duration)
                    .bind(cols.duration_orders)
                    .bind(new.plan.as_ref().map(|p| p.as_str().to_owned()))
                    .bind(new.expires_at)
                    .bind(new.max_redemptions.map(big))
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(conflict_as(|| {
                        format!("a coupon with code {} already exists", new.code)
                    }))?;
                record.into_coupon()
            }

            async fn coupons(&self, limit: u32) -> Result<Vec<Coupon>, StoreError> {
                let records: Vec<CouponRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT {COUPON_COLUMNS} FROM coupons ORDER BY id LIMIT $1"
                )))
                .bind(big(limit))
                .fetch_all(&self.pool)
                .await?;
                records.into_iter().map(CouponRecord::into_coupon).collect()
            }

            async fn disable_coupon(&self, code: &str, now: DateTime<Utc>) -> Result<Coupon, StoreError> {
                let record: Option<CouponRecord> = sqlx::query_as(DISABLE_COUPON)
                    .bind(code)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                record
                    .ok_or_else(|| {
                        StoreError::NotFound(format!(
                            "no coupon with code {code}; see `subsave coupons list`"
                        ))
                    })?
                    .into_coupon()
            }

            async fn create_subscription(
                &self,
                new: &NewSubscription,
                actor: &Actor,
                now: DateTime<Utc>,
            ) -> Result<Subscription, StoreError> {
                let mut tx = begin_write(&self.pool).await?;
                let customer = load_customer(&mut tx, new.customer_id).await?;
                let coupon = match &new.coupon_code {
                    Some(code) => {
                        let record: Option<CouponRecord> = sqlx::query_as(AssertSqlSafe(format!(
                            "SELECT {COUPON_COLUMNS} FROM coupons WHERE code = $1{COUPON_LOCK}"
                        )))
                        .bind(code)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let coupon = record
                            .ok_or_else(|| {
                                StoreError::NotFound(format!(
                                    "no coupon with code {code}; see `subsave coupons list`"
                                ))
                            })?
                            .into_coupon()?;
                        if let Some(why) = coupon.refuse_redemption(&new.plan, now) {
                            return Err(StoreError::Refused(crate::lifecycle::LifecycleError(why)));
                        }
                        sqlx::query("UPDATE coupons SET redemptions = redemptions + 1 WHERE id = $1")
                            .bind(coupon.id)
                            .execute(&mut *tx)
                            .await?;
                        Some(coupon)
                    }
                    None => None,
                };
                let (id,): (i64,) = sqlx::query_as(INSERT_SUBSCRIPTION)
                    .bind(new.customer_id)
                    .bind(new.plan.as_str())
                    .bind(big(new.quantity))
                    .bind(big(new.interval.count()))
                    .bind(interval_unit(new.interval))
                    .bind(new.anchor_local)
                    .bind(big(new.anchor_cycle))
                    .bind(new.time_zone.name())
                    .bind(big(new.next_cycle))
                    .bind(new.next_renewal_at)
                    .bind(big(new.orders_count))
                    .bind(coupon.as_ref().map(|c| c.id))
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                if let Some(coupon) = &coupon {
                    sqlx::query("INSERT INTO coupon_redemptions (coupon_id, subscription_id, redeemed_at) VALUES ($1, $2, $3)")
                        .bind(coupon.id)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                let sub = load_subscription(&mut *tx, id, false)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("subscription {id} vanished")))?;
                let change = change_with_notice(
                    &sub,
                    &sub,
                    &customer,
                    "created",
                    MessageKind::SubscriptionCreated,
                    actor,
                    serde_json::json!({ "coupon": new.coupon_code }),
                );
                write_changes(&mut tx, std::slice::from_ref(&change), now).await?;
                self.commit(tx).await?;
                Ok(sub)
            }

            async fn subscription(&self, id: i64) -> Result<Option<Subscription>, StoreError> {
                load_subscription(&self.pool, id, false).await
            }

            async fn subscriptions_by_id(
                &self,
                ids: &[i64],
            ) -> Result<Vec<Subscription>, StoreError> {
                let mut found = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::<$db>::new(format!("{SUBSCRIPTION_SELECT} WHERE s.id IN ("));
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    let records: Vec<SubscriptionRecord> = q.build_query_as().fetch_all(&self.pool).await?;
                    for record in records {
                        found.push(record.into_subscription()?);
                    }
                }
                Ok(found)
            }

            async fn subscriptions(
                &self,
                filter: &SubscriptionFilter,
            ) -> Result<Vec<Subscription>, StoreError> {
                let records: Vec<SubscriptionRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "{SUBSCRIPTION_SELECT}{SUBSCRIPTION_FILTER}"
                )))
                .bind(filter.status.map(|s| s.as_str()))
                .bind(filter.customer_id)
                .bind(filter.plan.as_deref())
                .bind(big(filter.limit))
                .fetch_all(&self.pool)
                .await?;
                records
                    .into_iter()
                    .map(SubscriptionRecord::into_subscription)
                    .collect()
            }

            async fn transition(
                &self,
                id: i64,
                transition: &Transition<'_>,
            ) -> Result<Subscription, StoreError> {
                let mut tx = begin_write(&self.pool).await?;
                let sub = load_subscription(&mut *tx, id, true).await?.ok_or_else(|| {
                    StoreError::NotFound(format!("no subscription {id}; see `subsave subs list`"))
                })?;
                let customer = load_customer(&mut tx, sub.customer_id).await?;
                let change = transition(&sub, &customer)?;
                let after = change.after.clone();
                write_changes(&mut tx, std::slice::from_ref(&change), after.updated_at).await?;
                self.commit(tx).await?;
                Ok(after)
            }

            async fn process_batch(
                &self,
                claim: Claim,
                until: DateTime<Utc>,
                now: DateTime<Utc>,
                limit: u32,
                planner: &Planner<'_>,
            ) -> Result<BatchOutcome, StoreError> {
                let mut tx = begin_write(&self.pool).await?;
                let sql = format!("{}{CLAIM_LOCK}", claim_sql(claim));
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(until).bind(big(limit));
                if let Claim::Reminders { after: Some((at, id)), .. } = claim {
                    query = query.bind(at).bind(id);
                }
                let rows: Vec<<$db as sqlx::Database>::Row> = query.fetch_all(&mut *tx).await?;
                let mut held_unreadable = 0;
                let mut last_key = None;
                let mut changes = Vec::with_capacity(rows.len());
                for row in &rows {
                    match parse_claimed(row) {
                        Ok((sub, customer)) => {
                            last_key = sub.next_renewal_at.map(|at| (at, sub.id));
                            if let Some(change) = planner(&sub, &customer) {
                                changes.push(change);
                            }
                        }
                        Err(problem) => {
                            // A row that does not even parse is held by SQL alone, with its error.
                            let id: i64 = sqlx::Row::try_get(row, "id").map_err(StoreError::Database)?;
                            tracing::error!(subscription = id, error = %problem, "holding an unreadable subscription");
                            sqlx::query(
                                "UPDATE subscriptions SET hold_reason = $2, error_count = error_count + 1 WHERE id = $1",
                            )
                            .bind(id)
                            .bind(problem.to_string())
                            .execute(&mut *tx)
                            .await?;
                            held_unreadable += 1;
                        }
                    }
                }
                write_changes(&mut tx, &changes, now).await?;
                self.commit(tx).await?;
                Ok(outcome_of(rows.len(), held_unreadable, &changes, last_key))
            }

            async fn due_preview(
                &self,
                now: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<(Subscription, Customer)>, StoreError> {
                let rows: Vec<<$db as sqlx::Database>::Row> = sqlx::query(AssertSqlSafe(claim_sql(Claim::DueRenewals)))
                    .bind(now)
                    .bind(big(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(parse_claimed).collect()
            }

            async fn plans_in_use(&self) -> Result<Vec<(String, u64)>, StoreError> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT plan_id, COUNT(*) FROM subscriptions WHERE status <> 'cancelled' \
                     GROUP BY plan_id ORDER BY plan_id",
                )
                .fetch_all(&self.pool)
                .await?;
                // COUNT(*) is never negative.
                Ok(rows
                    .into_iter()
                    .map(|(plan, n)| (plan, u64::try_from(n).unwrap_or(0)))
                    .collect())
            }

            async fn subscriptions_on_plan(&self, plan: &str, limit: u32) -> Result<Vec<i64>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM subscriptions WHERE status <> 'cancelled' AND plan_id = $1 \
                     ORDER BY id LIMIT $2",
                )
                .bind(plan)
                .bind(big(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn orders(&self, filter: &OrderFilter) -> Result<Vec<Order>, StoreError> {
                let records: Vec<OrderRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT {ORDER_COLUMNS} FROM orders{ORDER_FILTER}"
                )))
                .bind(filter.subscription_id)
                .bind(filter.customer_id)
                .bind(big(filter.limit))
                .fetch_all(&self.pool)
                .await?;
                let lines: Vec<OrderLineRecord> = sqlx::query_as(SELECT_ORDER_LINES)
                    .bind(filter.subscription_id)
                    .bind(filter.customer_id)
                    .bind(big(filter.limit))
                    .fetch_all(&self.pool)
                    .await?;
                records.into_iter().map(|r| r.into_order(&lines)).collect()
            }

            async fn order(&self, order_number: &str) -> Result<Option<Order>, StoreError> {
                let record: Option<OrderRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE order_number = $1"
                )))
                .bind(order_number)
                .fetch_optional(&self.pool)
                .await?;
                let Some(record) = record else {
                    return Ok(None);
                };
                let lines: Vec<OrderLineRecord> = sqlx::query_as(SELECT_ONE_ORDER_LINES)
                    .bind(record.id)
                    .fetch_all(&self.pool)
                    .await?;
                record.into_order(&lines).map(Some)
            }

            async fn events(&self, subscription_id: i64) -> Result<Vec<Event>, StoreError> {
                let records: Vec<EventRecord> = sqlx::query_as(SELECT_EVENTS)
                    .bind(subscription_id)
                    .fetch_all(&self.pool)
                    .await?;
                records.into_iter().map(EventRecord::into_event).collect()
            }

            async fn messages(&self, filter: &MessageFilter) -> Result<Vec<Message>, StoreError> {
                let records: Vec<MessageRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT {MESSAGE_COLUMNS} FROM outbox{MESSAGE_FILTER}"
                )))
                .bind(filter.status.as_deref())
                .bind(filter.kind.as_deref())
                .bind(filter.subscription_id)
                .bind(big(filter.limit))
                .fetch_all(&self.pool)
                .await?;
                records
                    .into_iter()
                    .map(MessageRecord::into_message)
                    .collect()
            }

            async fn message(&self, id: i64) -> Result<Option<Message>, StoreError> {
                let record: Option<MessageRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE id = $1"
                )))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                record.map(MessageRecord::into_message).transpose()
            }

            async fn claim_messages(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<Message>, StoreError> {
                let mut tx = begin_write(&self.pool).await?;
                let records: Vec<MessageRecord> = sqlx::query_as(AssertSqlSafe(format!(
                    "UPDATE outbox SET lease_until = $2, attempts = attempts + 1 WHERE id IN \
                     (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
                     AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at, id \
                     LIMIT $3{MESSAGE_CLAIM_LOCK}) RETURNING {MESSAGE_COLUMNS}"
                )))
                .bind(now)
                .bind(lease_until)
                .bind(big(limit))
                .fetch_all(&mut *tx)
                .await?;
                self.commit(tx).await?;
                let mut messages = records
                    .into_iter()
                    .map(MessageRecord::into_message)
                    .collect::<Result<Vec<_>, _>>()?;
                messages.sort_by_key(|m| (m.next_attempt_at, m.id));
                Ok(messages)
            }

            async fn finish_messages(
                &self,
                finished: &[(Message, super::Delivery)],
                now: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                use super::Delivery;
                let mut recorded = 0;
                for chunk in finished.chunks(ROWS_PER_STATEMENT) {
                    // The lease guards each row, not `status = 'pending'`: a lease is taken
                    // only after the previous one expired, so it names exactly one claim. It
                    // also keeps the plan on the primary key: with `status = 'pending'` and
                    // statistics that lag a burst of new mail, PostgreSQL chose the partial
                    // `outbox_pending` index and filtered every pending row per update.
                    let mut q = QueryBuilder::<$db>::new(
                        "WITH v (id, lease_until, status, next_attempt_at, last_error, sent_at) AS (",
                    );
                    q.push_values(chunk, |mut row, (message, outcome)| {
                        let (status, next_attempt, error, sent_at) = match outcome {
                            Delivery::Sent(reply) => ("sent", None, reply, Some(now)),
                            Delivery::Retry { at, error } => ("pending", Some(*at), error, None),
                            Delivery::Failed(error) => ("failed", None, error, None),
                            Delivery::Suppressed(reason) => ("suppressed", None, reason, None),
                        };
                        row.push_bind(message.id)
                            .push_bind(message.lease_until)
                            .push_bind(status)
                            .push_bind(next_attempt)
                            .push_bind(error.clone())
                            .push_bind(sent_at);
                    });
                    q.push(
                        ") UPDATE outbox SET status = v.status, \
                         next_attempt_at = COALESCE(v.next_attempt_at, outbox.next_attempt_at), \
                         last_error = v.last_error, sent_at = v.sent_at, lease_until = NULL \
                         FROM v WHERE outbox.id = v.id AND outbox.lease_until = v.lease_until",
                    );
                    recorded += q.build().execute(&self.pool).await?.rows_affected();
                }
                Ok(recorded)
            }

            async fn release_messages(&self, claimed: &[Message]) -> Result<u64, StoreError> {
                let mut released = 0;
                for chunk in claimed.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::<$db>::new("WITH v (id, lease_until) AS (");
                    q.push_values(chunk, |mut row, message| {
                        row.push_bind(message.id).push_bind(message.lease_until);
                    });
                    q.push(
                        ") UPDATE outbox SET lease_until = NULL, attempts = attempts - 1 FROM v \
                         WHERE outbox.id = v.id AND outbox.lease_until = v.lease_until",
                    );
                    released += q.build().execute(&self.pool).await?.rows_affected();
                }
                Ok(released)
            }

            async fn retry_failed(&self, id: Option<i64>, now: DateTime<Utc>) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, \
                     lease_until = NULL WHERE status = 'failed' AND ($1 IS NULL OR id = $1)",
                )
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn ready(&self) -> Result<(), String> {
                let applied: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(|e| format!("database unreachable or not migrated: {e}"))?;
                let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
                if applied < latest {
                    return Err(format!(
                        "migrations pending: the database is at {applied}, this build needs {latest}; run `subsave migrate`"
                    ));
                }
                Ok(())
            }

            async fn outbox_backlog(
                &self,
                now: DateTime<Utc>,
            ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
                let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                    .fetch_one(&self.pool)
                    .await?;
                let oldest: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT MIN(created_at) FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                Ok((pending, oldest))
            }

            async fn due_count(&self, now: DateTime<Utc>) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM subscriptions WHERE status = 'active' \
                     AND hold_reason IS NULL AND next_renewal_at <= $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn wait_for_outbox(&self, timeout: std::time::Duration) {
                wait_for_outbox(self, timeout).await
            }

            async fn export_orders(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
                sink: &mut (dyn FnMut(super::FinanceOrder) -> std::io::Result<()> + Send),
            ) -> Result<u64, StoreError> {
                use futures_util::TryStreamExt;
                let mut rows = sqlx::query_as::<_, super::FinanceOrder>(
                    "SELECT order_number, order_id, created_at, billing_date, customer_id, customer_email, \
                     tax_region, plan, packs, quantity, currency, subtotal_minor, \
                     subscribe_and_save_discount_minor, loyalty_discount_minor, coupon_discount_minor, \
                     coupon_code, shipping_minor, tax_minor, tax_inclusive, total_minor \
                     FROM finance_orders WHERE billing_date >= $1 AND billing_date <= $2 \
                     ORDER BY billing_date, order_id",
                )
                .bind(from)
                .bind(to)
                .fetch(&self.pool);
                let mut count = 0;
                while let Some(row) = rows.try_next().await? {
                    sink(row).map_err(|e| StoreError::Corrupt(format!("writing the export: {e}")))?;
                    count += 1;
                }
                Ok(count)
            }

            async fn live_subscriptions(
                &self,
                after_id: i64,
                limit: u32,
            ) -> Result<Vec<(Subscription, Customer)>, StoreError> {
                let rows = sqlx::query(AssertSqlSafe(with_customers(
                    "WHERE s.status <> 'cancelled' AND s.id > $1 ORDER BY s.id LIMIT $2",
                )))
                .bind(after_id)
                .bind(big(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(parse_claimed).collect()
            }

            async fn audit(&self, limit: u32) -> Result<Vec<(String, Vec<String>)>, StoreError> {
                let checks: [(&str, &str); 4] = [
                    (
                        "order lines do not sum to the order total",
                        "SELECT o.order_number FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id \
                         GROUP BY o.id, o.order_number, o.total_minor \
                         HAVING COALESCE(SUM(l.amount_minor), 0) <> o.total_minor ORDER BY o.id LIMIT $1",
                    ),
                    (
                        "more than one order for a (subscription, cycle)",
                        "SELECT MIN(order_number) FROM orders GROUP BY subscription_id, cycle \
                         HAVING COUNT(*) > 1 ORDER BY 1 LIMIT $1",
                    ),
                    (
                        "order without its confirmation message",
                        "SELECT o.order_number FROM orders o WHERE NOT EXISTS \
                         (SELECT 1 FROM outbox m WHERE m.order_id = o.id AND m.kind = 'order_confirmation') \
                         ORDER BY o.id LIMIT $1",
                    ),
                    (
                        "active subscription without a next renewal",
                        "SELECT 'subscription ' || id FROM subscriptions \
                         WHERE status = 'active' AND next_renewal_at IS NULL ORDER BY id LIMIT $1",
                    ),
                ];
                let mut findings = Vec::new();
                for (check, sql) in checks {
                    let keys: Vec<String> = sqlx::query_scalar(sql).bind(big(limit)).fetch_all(&self.pool).await?;
                    findings.push((check.to_owned(), keys));
                }
                Ok(findings)
            }

            async fn ordered_plans(&self) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT DISTINCT plan_id FROM orders ORDER BY 1")
                    .fetch_all(&self.pool)
                    .await?)
            }
        }
    };
}

pub(crate) use sql_store;
