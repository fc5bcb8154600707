-- v14 -> v15: PostgreSQL notifies gateways of configuration changes and orders each outbox lane at commit
-- Gateways cache configuration per version (store/configversion.go); on
-- PostgreSQL each one LISTENs on wagate_config and moves its version on at
-- every notification, sent here in the writing transaction and delivered
-- only when it commits. The triggers cover every table a cache reads.
-- SQLite's database belongs to one process, which sees its own writes.
-- only: postgres until "end only"
CREATE FUNCTION wagate_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wagate_config', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER instances_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON instances
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_config_changed();
CREATE TRIGGER webhooks_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_config_changed();
CREATE TRIGGER openai_creds_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON openai_creds
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_config_changed();
CREATE TRIGGER openai_bots_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON openai_bots
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_config_changed();
CREATE TRIGGER openai_settings_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON openai_settings
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_config_changed();
CREATE TRIGGER chatbots_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON chatbots
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_config_changed();
CREATE TRIGGER organizations_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_config_changed();
CREATE TRIGGER organization_keys_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON organization_keys
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_config_changed();

-- An outbox event's seq must follow commit order within its lane
-- (store.InsertEvent). Drawn when the row is inserted, it would not: two
-- transactions draw and commit in either order. This deferred trigger runs
-- inside COMMIT: it takes the lane's lock (held until the commit ends; the
-- first key is "wgln" in ASCII, the second the lane's hash) and draws the
-- final seq under it. Taken there, the lock is held for no round trip to the
-- client, so one lane's transactions do not queue behind each other's work.
CREATE FUNCTION wagate_event_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(2003266670, hashtext(NEW.lane));
    UPDATE webhook_events SET seq = DEFAULT WHERE seq = NEW.seq;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER webhook_events_order AFTER INSERT ON webhook_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wagate_event_order();
-- end only postgres
