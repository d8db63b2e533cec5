-- tenant/: the recordings' events trigger (on the tables of 001, calling the function of 002).
-- OR REPLACE: the home database's shared table has it already (app/migrations/004_events.sql).
CREATE OR REPLACE TRIGGER recordings_emit_events
AFTER INSERT OR UPDATE OR DELETE ON recordings
FOR EACH ROW EXECUTE FUNCTION app.recording_event();
