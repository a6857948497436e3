-- Scheduled report runs: a report with schedule_hours > 0 is due at next_run_at. The scheduler finds due reports of
-- every tenant through the report_scheduler policy (SELECT only, with app.report_scheduler on, set only by the
-- scheduler's own statement); it then claims and runs each one as its tenant.
ALTER TABLE analytics.reports ADD COLUMN schedule_hours integer NOT NULL DEFAULT 0, ADD COLUMN next_run_at timestamptz;
CREATE INDEX reports_due ON analytics.reports (next_run_at) WHERE next_run_at IS NOT NULL AND deleted_at IS NULL;
CREATE POLICY report_scheduler ON analytics.reports FOR SELECT USING (current_setting('app.report_scheduler', true) = 'on');
