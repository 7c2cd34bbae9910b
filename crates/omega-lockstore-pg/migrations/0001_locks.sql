-- Omega lock store, version 1: the lock table, the waiters queue, the owner registry and the
-- functions that decide grants. Run by `migrate.rs` with search_path set to the store's
-- schema, so every name below lives there. See `src/README.md` for the design.
--
-- Rules (they mirror the in-memory manager, omega-sched `lock/state.rs`):
--  * A request (one `req` uuid: one resource or a batch) is granted when every item fits the
--    live holders (compatible, re-entrant, or a sole holder's upgrade) and every waiter
--    queued ahead of it on that resource may be passed: only a reader passes a reader.
--  * Locking discipline (transaction-level advisory locks, released at commit). A *wide*
--    operation takes the schema's lock (1869440364, hashtext(schema)) exclusively: batches,
--    deadlock searches, sweeps, owner operations — whatever needs a consistent view of
--    several resources, like the in-memory manager's one mutex. A *narrow* operation, on
--    one resource (plus the releases it carries), takes the schema's lock shared and then
--    each touched resource's lock (1869440366, hashtext(schema/resource)) exclusively, in
--    key order: so operations on different resources run in parallel, and none runs while
--    a wide one does. A narrow operation that finds it needs more (a wait that may close a
--    cycle) answers 'wide' and the client asks again, wide; a narrow hand-off that reaches a
--    batch waiter leaves the batch to regrant itself (notification 'c <req>': look again).
--  * A grant whose `expires_at` has passed is dead: ignored by every decision, freed by the
--    next sweep. Every grant has a lease (`ttl`): `auto_renew` rows are renewed by their
--    process's keepalive while it can reach the database; the others only by `renew`.
--  * Rows are slots, reused: a grant fills a free slot of its resource (or adds one), a
--    release empties it (`fence`/`req` NULL). No indexed column changes on either, so both
--    are HOT updates: no dead index entries pile up under churn (insert/delete churn made a
--    grant three times slower within seconds). Slots idle for a minute are deleted by the
--    sweep, so the table does not grow with the number of names ever used.
--  * Fencing tokens (and the FIFO order of waiters) come from `_next()`: epoch × 2^40 +
--    the next value of `fence_seq`. That sequence is UNLOGGED (PostgreSQL 15 and later), so
--    taking a value writes no WAL and, like every sequence, holds no lock; the epoch comes
--    from the durable sequence `epochs` and is drawn anew whenever the unlogged row of
--    `fence_epoch` is missing — first use, or after a crash reset the unlogged objects (the
--    sequence with them). Grants on one resource are serialized by its lock, so fences
--    strictly increase per resource, across every process, and across server crashes and
--    restarts, without a WAL flush per grant (a logged sequence flushes every 32 values:
--    ~0.1 ms per grant on an ordinary disk; before PostgreSQL 15 that is what it uses).
--  * `locks`, `waiters`, `fence_epoch` and `fence_seq` are UNLOGGED: grants and waits commit
--    without a WAL flush. A server crash empties them, which releases every lock, exactly
--    as it drops every advisory lock; holders learn it at their next keepalive (their
--    fences are gone) and fencing tokens stay monotonic (a new epoch).

CREATE SEQUENCE epochs;

DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 150000 THEN
        EXECUTE 'CREATE UNLOGGED SEQUENCE fence_seq MAXVALUE 1099511627775';
    ELSE
        EXECUTE 'CREATE SEQUENCE fence_seq MAXVALUE 1099511627775';
    END IF;
END $$;

CREATE UNLOGGED TABLE fence_epoch (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),  -- a single row
    epoch bigint NOT NULL
);

CREATE UNLOGGED TABLE locks (
    slot        bigserial PRIMARY KEY,
    resource    text NOT NULL,
    fence       bigint,          -- fencing token and lease id; NULL: a free slot
    mode        text,            -- 'read' or 'write' (no CHECK: it would be re-planned per statement)
    owner_id    text,
    session     uuid,            -- the store instance that asked
    req         uuid,            -- the request that was granted
    acquired_at timestamptz,
    expires_at  timestamptz,
    ttl         interval,
    auto_renew  boolean,
    freed_at    timestamptz
) WITH (fillfactor = 50);
CREATE INDEX locks_resource ON locks (resource);

CREATE UNLOGGED TABLE waiters (
    slot        bigserial PRIMARY KEY,
    resource    text NOT NULL,
    req         uuid,            -- NULL: a free slot
    items       text[],          -- every resource of the request (sorted)
    mode        text,            -- 'read' or 'write' (no CHECK: it would be re-planned per statement)
    arrival     bigint,          -- one global FIFO order
    owner_id    text,
    task_id     text,            -- the acting task, for a named owner
    session     uuid,
    ttl         interval,        -- the lease the grant will carry
    auto_renew  boolean,
    enqueued_at timestamptz,
    expires_at  timestamptz,     -- the wait's own lease (keepalive)
    freed_at    timestamptz
) WITH (fillfactor = 50);
CREATE INDEX waiters_resource ON waiters (resource);

CREATE TABLE owners (
    owner_id       text PRIMARY KEY,
    metadata       jsonb NOT NULL,
    ttl            interval NOT NULL,
    registered_at  timestamptz NOT NULL,
    last_heartbeat timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);

-- What a lock operation came to. `grants` lists the hand-offs it made to waiters, in the
-- NOTIFY payload format 'g <req> <fence>,<fence>…', so the caller can complete its own
-- process's waiters without waiting for the notification.
CREATE TYPE outcome AS (
    status      text,      -- granted | waiting | conflict | upgrade | deadlock | timeout | gone
                           -- | wide (ask again with p_wide)
    fences      bigint[],  -- granted: one per item, items sorted by name (bytewise)
    resource    text,      -- the first blocked resource (conflict, upgrade, waiting, timeout)
    holder      text,      -- a conflicting holder; NULL when only waiters ahead stand in the way
    holder_mode text,
    position    int,       -- queue position, 1 = first
    others      int,       -- upgrade: how many other owners hold the resource
    expiry_us   bigint,    -- waiting: microseconds until the next lease in the way expires
    edges       jsonb,     -- deadlock: the wait-for graph ({"start": [...], "edges": [...]})
    grants      text[]
);

CREATE TYPE released AS (n int, grants text[]);

-- The next fencing token (or arrival).
CREATE FUNCTION _next() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_epoch bigint;
BEGIN
    SELECT epoch INTO v_epoch FROM fence_epoch;
    IF v_epoch IS NULL THEN
        -- First use, or a crash reset the unlogged objects: a new epoch.
        INSERT INTO fence_epoch (epoch) VALUES (nextval('epochs')) ON CONFLICT DO NOTHING;
        SELECT epoch INTO v_epoch FROM fence_epoch;
    END IF;
    RETURN v_epoch * 1099511627776 + nextval('fence_seq');
END $$;

CREATE FUNCTION _channel() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'omega_locks.' || current_schema()
$$;

-- The locking discipline (see the header).
CREATE FUNCTION _lock_wide() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1869440364, hashtext(current_schema()));
    PERFORM set_config('omega.wide', 'on', true);
END $$;

CREATE FUNCTION _lock_narrow(p_resources text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k int;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1869440364, hashtext(current_schema()));
    PERFORM set_config('omega.wide', 'off', true);
    IF p_resources[1] = ALL (p_resources) THEN
        -- One resource (the common case): no sorting.
        PERFORM pg_advisory_xact_lock(1869440366, hashtext(current_schema() || '/' || p_resources[1]));
        RETURN;
    END IF;
    FOR k IN SELECT DISTINCT hashtext(current_schema() || '/' || r)
               FROM unnest(p_resources) AS r ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1869440366, k);
    END LOOP;
END $$;

CREATE FUNCTION _wide() RETURNS boolean LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(current_setting('omega.wide', true), 'on') <> 'off'
$$;

-- How a request for `p_mode` on `p_resource` by `p_owner` fits the live holders:
-- 'reentrant' (held already in a covering mode, or a sole holder's upgrade), 'free'
-- (compatible with every holder), 'blocked', or 'upgrade' (read→write with other holders).
CREATE FUNCTION _fit(p_resource text, p_owner text, p_mode text, p_now timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_mine int; v_mine_w boolean; v_others int; v_others_w boolean;
BEGIN
    SELECT count(*) FILTER (WHERE owner_id = p_owner),
           coalesce(bool_or(mode = 'write') FILTER (WHERE owner_id = p_owner), false),
           count(*) FILTER (WHERE owner_id <> p_owner),
           coalesce(bool_or(mode = 'write') FILTER (WHERE owner_id <> p_owner), false)
      INTO v_mine, v_mine_w, v_others, v_others_w
      FROM locks WHERE resource = p_resource AND expires_at > p_now;
    IF v_mine > 0 THEN
        IF p_mode = 'read' OR v_mine_w OR v_others = 0 THEN
            RETURN 'reentrant';
        END IF;
        RETURN 'upgrade';
    END IF;
    IF v_others > 0 AND (p_mode = 'write' OR v_others_w) THEN
        RETURN 'blocked';
    END IF;
    RETURN 'free';
END $$;

-- True when every live waiter ahead of `p_limit` on `p_resource` lets a `p_mode` request
-- pass: only readers pass readers.
CREATE FUNCTION _queue_allows(p_resource text, p_limit bigint, p_mode text, p_now timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM waiters
         WHERE resource = p_resource AND arrival < p_limit AND expires_at > p_now
           AND NOT (p_mode = 'read' AND mode = 'read'))
$$;

-- One grant: fills a free slot of the resource, or adds one. Returns its fence.
CREATE FUNCTION _grant_one(p_req uuid, p_session uuid, p_owner text, p_resource text,
                           p_mode text, p_ttl interval, p_auto boolean, p_now timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_fence bigint := _next();
BEGIN
    UPDATE locks SET fence = v_fence, mode = p_mode, owner_id = p_owner, session = p_session,
                     req = p_req, acquired_at = p_now, expires_at = p_now + p_ttl,
                     ttl = p_ttl, auto_renew = p_auto, freed_at = NULL
     WHERE ctid = (SELECT ctid FROM locks
                    WHERE resource = p_resource AND fence IS NULL LIMIT 1);
    IF NOT FOUND THEN
        INSERT INTO locks (resource, fence, mode, owner_id, session, req, acquired_at,
                           expires_at, ttl, auto_renew)
        VALUES (p_resource, v_fence, p_mode, p_owner, p_session, p_req, p_now, p_now + p_ttl,
                p_ttl, p_auto);
    END IF;
    RETURN v_fence;
END $$;

-- One grant per item; returns the fences in item order.
CREATE FUNCTION _grant(p_req uuid, p_session uuid, p_owner text, p_resources text[],
                       p_modes text[], p_ttl interval, p_auto boolean, p_now timestamptz)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_fences bigint[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_resources, 1), 0) LOOP
        v_fences := v_fences || _grant_one(p_req, p_session, p_owner, p_resources[i],
                                           p_modes[i], p_ttl, p_auto, p_now);
    END LOOP;
    RETURN v_fences;
END $$;

-- Empties the slots of grants (released, swept); returns their resources.
CREATE FUNCTION _free_locks(p_fences bigint[], p_resources text[], p_now timestamptz)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v_res text[];
BEGIN
    IF p_resources IS NULL THEN
        -- Fences of unknown resources (a lease id without its guard): a scan.
        WITH d AS (UPDATE locks SET fence = NULL, owner_id = NULL, req = NULL,
                                    expires_at = NULL, freed_at = p_now
                    WHERE fence = ANY (p_fences) RETURNING resource)
        SELECT array_agg(resource) INTO v_res FROM d;
    ELSE
        WITH d AS (UPDATE locks SET fence = NULL, owner_id = NULL, req = NULL,
                                    expires_at = NULL, freed_at = p_now
                    WHERE resource = ANY (p_resources) AND fence = ANY (p_fences)
                   RETURNING resource)
        SELECT array_agg(resource) INTO v_res FROM d;
    END IF;
    RETURN coalesce(v_res, '{}');
END $$;

-- Empties the slots of a waiting request; returns its resources.
CREATE FUNCTION _free_wait(p_req uuid, p_items text[], p_now timestamptz)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v_res text[];
BEGIN
    WITH d AS (UPDATE waiters SET req = NULL, owner_id = NULL, task_id = NULL,
                                  expires_at = NULL, arrival = NULL, freed_at = p_now
                WHERE resource = ANY (p_items) AND req = p_req RETURNING resource)
    SELECT array_agg(resource) INTO v_res FROM d;
    RETURN coalesce(v_res, '{}');
END $$;

-- True when waiter `p_req` fits the holders of all its resources and, on resources other
-- than `p_scanning` (whose queue the caller walks in order), nobody ahead blocks it.
CREATE FUNCTION _grantable(p_req uuid, p_items text[], p_scanning text, p_now timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    w record;
    v_fit text;
BEGIN
    FOR w IN SELECT resource, mode, owner_id, arrival FROM waiters
              WHERE resource = ANY (p_items) AND req = p_req LOOP
        v_fit := _fit(w.resource, w.owner_id, w.mode, p_now);
        IF v_fit NOT IN ('reentrant', 'free') THEN
            RETURN false;
        END IF;
        IF w.resource <> p_scanning
           AND NOT _queue_allows(w.resource, w.arrival, w.mode, p_now) THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END $$;

-- Grants every resource of waiter `p_req` at once, takes it out of the queue and notifies.
-- Returns the hand-off in payload form.
CREATE FUNCTION _grant_waiter(p_req uuid, p_items text[], p_now timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_res text[]; v_modes text[]; v_owner text; v_session uuid; v_ttl interval;
    v_auto boolean; v_fences bigint[]; v_payload text;
BEGIN
    SELECT array_agg(resource ORDER BY resource COLLATE "C"),
           array_agg(mode ORDER BY resource COLLATE "C"),
           min(owner_id), (array_agg(session))[1], max(ttl), bool_and(auto_renew)
      INTO v_res, v_modes, v_owner, v_session, v_ttl, v_auto
      FROM waiters WHERE resource = ANY (p_items) AND req = p_req;
    PERFORM _free_wait(p_req, p_items, p_now);
    v_fences := _grant(p_req, v_session, v_owner, v_res, v_modes, v_ttl, v_auto, p_now);
    v_payload := 'g ' || p_req::text || ' ' || array_to_string(v_fences, ',');
    PERFORM pg_notify(_channel(), v_payload);
    RETURN v_payload;
END $$;

-- Re-runs grants for `p_resource` after a holder left or a waiter went away: walks its
-- queue in order, granting what fits and stopping at the first waiting writer.
CREATE FUNCTION _regrant(p_resource text, p_now timestamptz)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    w record;
    v_reader_waiting boolean := false;
    v_grants text[] := '{}';
    v_ok boolean;
    v_payload text;
BEGIN
    FOR w IN SELECT slot, req, items, mode, owner_id, session, ttl, auto_renew FROM waiters
              WHERE resource = p_resource AND expires_at > p_now ORDER BY arrival LOOP
        IF w.mode = 'write' AND v_reader_waiting THEN
            EXIT;
        END IF;
        IF cardinality(w.items) = 1 THEN
            -- One resource, whose queue this walks in order: the holders decide.
            v_ok := _fit(p_resource, w.owner_id, w.mode, p_now) IN ('reentrant', 'free');
        ELSIF NOT _wide() THEN
            -- A batch needs its other resources: let it look again, wide, and stop here.
            v_payload := 'c ' || w.req::text;
            PERFORM pg_notify(_channel(), v_payload);
            v_grants := v_grants || v_payload;
            EXIT;
        ELSE
            v_ok := _grantable(w.req, w.items, p_resource, p_now);
        END IF;
        IF v_ok THEN
            IF cardinality(w.items) = 1 THEN
                UPDATE waiters SET req = NULL, owner_id = NULL, task_id = NULL,
                                   expires_at = NULL, arrival = NULL, freed_at = p_now
                 WHERE slot = w.slot;
                v_payload := 'g ' || w.req::text || ' '
                    || _grant_one(w.req, w.session, w.owner_id, p_resource, w.mode, w.ttl,
                                  w.auto_renew, p_now);
                PERFORM pg_notify(_channel(), v_payload);
                v_grants := v_grants || v_payload;
            ELSE
                v_grants := v_grants || _grant_waiter(w.req, w.items, p_now);
            END IF;
            IF w.mode = 'write' THEN
                EXIT;
            END IF;
        ELSIF w.mode = 'write' THEN
            EXIT;
        ELSE
            v_reader_waiting := true;
        END IF;
    END LOOP;
    RETURN v_grants;
END $$;

-- Regrants the queues of `p_resources` that have waiters.
CREATE FUNCTION _regrant_all(p_resources text[], p_now timestamptz)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    r text;
    v_grants text[] := '{}';
BEGIN
    FOR r IN SELECT DISTINCT resource FROM waiters
              WHERE resource = ANY (p_resources) AND expires_at > p_now ORDER BY 1 LOOP
        v_grants := v_grants || _regrant(r, p_now);
    END LOOP;
    RETURN v_grants;
END $$;

-- Frees dead grants and waits (of `p_resources`, or everywhere when NULL) and regrants
-- what they blocked. Returns how many leases were freed.
CREATE FUNCTION _sweep(p_now timestamptz, p_resources text[])
RETURNS released LANGUAGE plpgsql AS $$
DECLARE
    v_n int; v_locks text[]; v_waits text[];
BEGIN
    IF p_resources IS NULL THEN
        WITH d AS (UPDATE locks SET fence = NULL, owner_id = NULL, req = NULL,
                                    expires_at = NULL, freed_at = p_now
                    WHERE expires_at <= p_now RETURNING resource)
        SELECT count(*), array_agg(resource) INTO v_n, v_locks FROM d;
        WITH d AS (UPDATE waiters SET req = NULL, owner_id = NULL, task_id = NULL,
                                      expires_at = NULL, arrival = NULL, freed_at = p_now
                    WHERE expires_at <= p_now RETURNING resource)
        SELECT array_agg(resource) INTO v_waits FROM d;
    ELSE
        WITH d AS (UPDATE locks SET fence = NULL, owner_id = NULL, req = NULL,
                                    expires_at = NULL, freed_at = p_now
                    WHERE resource = ANY (p_resources) AND expires_at <= p_now
                   RETURNING resource)
        SELECT count(*), array_agg(resource) INTO v_n, v_locks FROM d;
        WITH d AS (UPDATE waiters SET req = NULL, owner_id = NULL, task_id = NULL,
                                      expires_at = NULL, arrival = NULL, freed_at = p_now
                    WHERE resource = ANY (p_resources) AND expires_at <= p_now
                   RETURNING resource)
        SELECT array_agg(resource) INTO v_waits FROM d;
    END IF;
    IF v_locks IS NULL AND v_waits IS NULL THEN
        RETURN (v_n, '{}'::text[]);
    END IF;
    RETURN (v_n, _regrant_all(coalesce(v_locks, '{}') || coalesce(v_waits, '{}'), p_now));
END $$;

-- Why `p_owner`'s items cannot all be granted now: the first blocked resource, a
-- conflicting holder (the oldest grant) and the queue position the request has (its
-- arrival `p_limit`) or would have (NULL: a newcomer).
CREATE FUNCTION _blocker(p_owner text, p_resources text[], p_modes text[], p_limit bigint,
                         p_now timestamptz, p_status text)
RETURNS outcome LANGUAGE plpgsql AS $$
DECLARE
    v_limit bigint := coalesce(p_limit, 9223372036854775807);
    v_holder text; v_holder_w boolean; v_pos int;
    o outcome;
BEGIN
    o.status := p_status;
    FOR i IN 1 .. coalesce(array_length(p_resources, 1), 0) LOOP
        CONTINUE WHEN _fit(p_resources[i], p_owner, p_modes[i], p_now) = 'reentrant';
        v_holder := NULL;
        SELECT l.owner_id INTO v_holder FROM locks l
         WHERE l.resource = p_resources[i] AND l.owner_id <> p_owner AND l.expires_at > p_now
           AND (p_modes[i] = 'write' OR EXISTS (
                 SELECT 1 FROM locks m WHERE m.resource = l.resource
                    AND m.owner_id = l.owner_id AND m.mode = 'write' AND m.expires_at > p_now))
         ORDER BY l.fence LIMIT 1;
        CONTINUE WHEN v_holder IS NULL
             AND _queue_allows(p_resources[i], v_limit, p_modes[i], p_now);
        SELECT count(*) + 1 INTO v_pos FROM waiters
         WHERE resource = p_resources[i] AND arrival < v_limit AND expires_at > p_now;
        IF v_holder IS NOT NULL THEN
            SELECT bool_or(mode = 'write') INTO v_holder_w FROM locks
             WHERE resource = p_resources[i] AND owner_id = v_holder AND expires_at > p_now;
            o.holder_mode := CASE WHEN v_holder_w THEN 'write' ELSE 'read' END;
        END IF;
        o.resource := p_resources[i];
        o.holder := v_holder;
        o.position := v_pos;
        RETURN o;
    END LOOP;
    o.resource := p_resources[1];
    o.position := 1;
    RETURN o;
END $$;

-- A waiting request's answer: the time until the next lease in its way expires (holders
-- of its resources, or waiters queued ahead of it, whose process may die). Who holds it
-- and where it stands are worked out only when that is reported (a timeout).
CREATE FUNCTION _waiting(p_req uuid, p_items text[], p_now timestamptz, p_grants text[])
RETURNS outcome LANGUAGE plpgsql AS $$
DECLARE
    v_next timestamptz;
    o outcome;
BEGIN
    SELECT min(t) INTO v_next FROM (
        SELECT min(expires_at) AS t FROM locks
         WHERE resource = ANY (p_items) AND expires_at > p_now
        UNION ALL
        SELECT min(w.expires_at) FROM waiters w
         WHERE w.resource = ANY (p_items) AND w.expires_at > p_now AND w.req <> p_req
           AND w.arrival < (SELECT min(arrival) FROM waiters
                             WHERE resource = ANY (p_items) AND req = p_req)) x;
    o.status := 'waiting';
    o.expiry_us := (extract(epoch FROM (v_next - p_now)) * 1000000)::bigint;
    o.grants := p_grants;
    RETURN o;
END $$;

-- True when something may wait for `p_owner` (or its acting task): it holds a live lock
-- or waits for one. Otherwise no edge of the wait-for graph can lead back to it.
CREATE FUNCTION _may_be_waited_for(p_owner text, p_task text, p_now timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM locks
                    WHERE owner_id IN (p_owner, p_task) AND expires_at > p_now)
        OR EXISTS (SELECT 1 FROM waiters
                    WHERE (owner_id IN (p_owner, p_task) OR task_id IN (p_owner, p_task))
                      AND expires_at > p_now)
$$;

-- Would `p_owner` (acting task `p_task`), waiting now for these items, close a cycle of
-- the wait-for graph? The graph is read off the tables: a waiting request's owner (and its
-- acting task) waits for every other live holder of a requested resource in a conflicting
-- mode, and for every waiter queued ahead of it that it may not pass. Returns the edges
-- reachable from the request when a goal is among them (the client finds the cycle), NULL
-- otherwise.
CREATE FUNCTION _deadlock(p_owner text, p_task text, p_resources text[], p_modes text[],
                          p_now timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_goals text[] := ARRAY[p_owner];
    v_found boolean;
    v_graph jsonb;
BEGIN
    IF p_task IS NOT NULL AND p_task <> p_owner THEN
        v_goals := v_goals || p_task;
    END IF;
    -- Nothing waits for a goal that holds nothing and waits for nothing.
    IF NOT _may_be_waited_for(p_owner, p_task, p_now) THEN
        RETURN NULL;
    END IF;
    WITH RECURSIVE
    held AS (
        SELECT resource, owner_id, bool_or(mode = 'write') AS w
          FROM locks WHERE expires_at > p_now GROUP BY resource, owner_id),
    live AS (SELECT * FROM waiters WHERE expires_at > p_now),
    nodes AS (
        SELECT resource, mode, arrival, owner_id, owner_id AS node FROM live
        UNION ALL
        SELECT resource, mode, arrival, owner_id, task_id FROM live
         WHERE task_id IS NOT NULL AND task_id <> owner_id),
    -- A request's item on a resource its owner holds is re-entrant (or failed at once as
    -- an upgrade conflict): it makes no edge.
    waits AS (
        SELECT n.* FROM nodes n
         WHERE NOT EXISTS (SELECT 1 FROM held h
                            WHERE h.resource = n.resource AND h.owner_id = n.owner_id)),
    edges AS (
        SELECT w.node AS waiter, 'lock' AS kind, w.resource, h.owner_id AS holder
          FROM waits w JOIN held h ON h.resource = w.resource AND h.owner_id <> w.owner_id
                                  AND (w.mode = 'write' OR h.w)
        UNION
        SELECT w.node, 'queue', w.resource, a.owner_id
          FROM waits w JOIN live a ON a.resource = w.resource AND a.arrival < w.arrival
                                  AND a.owner_id <> w.owner_id
                                  AND NOT (w.mode = 'read' AND a.mode = 'read')),
    req AS (
        SELECT r AS resource, m AS mode FROM unnest(p_resources, p_modes) AS t(r, m)
         WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.resource = t.r AND h.owner_id = p_owner)),
    start AS (
        SELECT p_owner AS waiter, 'lock' AS kind, q.resource, h.owner_id AS holder
          FROM req q JOIN held h ON h.resource = q.resource AND h.owner_id <> p_owner
                                AND (q.mode = 'write' OR h.w)
        UNION
        SELECT p_owner, 'queue', q.resource, a.owner_id
          FROM req q JOIN live a ON a.resource = q.resource AND a.owner_id <> p_owner
                                AND NOT (q.mode = 'read' AND a.mode = 'read')),
    reach(node) AS (
        SELECT holder FROM start
        UNION
        SELECT e.holder FROM reach r JOIN edges e ON e.waiter = r.node)
    SELECT EXISTS (SELECT 1 FROM reach WHERE node = ANY (v_goals)),
           jsonb_build_object(
               'start', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM start s),
               'edges', (SELECT coalesce(jsonb_agg(to_jsonb(e)), '[]') FROM edges e
                          WHERE e.waiter IN (SELECT node FROM reach)))
      INTO v_found, v_graph;
    IF v_found THEN
        RETURN v_graph;
    END IF;
    RETURN NULL;
END $$;

-- Releases grants by fence (`p_resources`: theirs, to find them by index; NULL: scan).
CREATE FUNCTION _release(p_fences bigint[], p_resources text[], p_now timestamptz)
RETURNS released LANGUAGE plpgsql AS $$
DECLARE
    v_res text[] := _free_locks(p_fences, p_resources, p_now);
BEGIN
    IF cardinality(v_res) = 0 THEN
        RETURN (0, '{}'::text[]);
    END IF;
    RETURN (cardinality(v_res), _regrant_all(v_res, p_now));
END $$;

-- Acquires every item (one request, all or nothing) for `p_owner`, or queues it
-- (`p_wait`), or reports the conflict. `p_release`/`p_release_res` are fences (and their
-- resources) to release first, in the same transaction: guards this process dropped since
-- its last request. `p_retry` says the request may have been made before (its reply was
-- lost): then a grant or a wait already made for `p_req` is returned instead.
CREATE FUNCTION acquire(p_req uuid, p_session uuid, p_owner text, p_task text,
                        p_resources text[], p_modes text[], p_ttl interval,
                        p_auto boolean, p_wait boolean, p_wait_ttl interval,
                        p_now timestamptz, p_release bigint[], p_release_res text[],
                        p_retry boolean, p_wide boolean)
RETURNS outcome LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_fences bigint[];
    v_grants text[] := '{}';
    v_fit text;
    v_wait boolean := false;
    v_edges jsonb;
    v_arrival bigint;
    v_mine int; v_mine_w boolean; v_others int; v_others_w boolean; v_dead int;
    v_blocks int;
    o outcome;
BEGIN
    IF p_wide OR cardinality(p_resources) <> 1
       OR (cardinality(p_release) > 0 AND p_release_res IS NULL) THEN
        PERFORM _lock_wide();
    ELSE
        PERFORM _lock_narrow(p_resources || coalesce(p_release_res, '{}'));
    END IF;
    v_now := coalesce(p_now, clock_timestamp());
    IF cardinality(p_release) > 0 THEN
        v_grants := (_release(p_release, p_release_res, v_now)).grants;
    END IF;
    IF p_retry THEN
        SELECT array_agg(fence ORDER BY resource COLLATE "C") INTO v_fences
          FROM locks WHERE resource = ANY (p_resources) AND req = p_req;
        IF v_fences IS NOT NULL THEN
            o.status := 'granted'; o.fences := v_fences; o.grants := v_grants;
            RETURN o;
        END IF;
        IF EXISTS (SELECT 1 FROM waiters WHERE resource = ANY (p_resources) AND req = p_req)
        THEN
            RETURN _waiting(p_req, p_resources, v_now, v_grants);
        END IF;
    END IF;
    -- Fast path, one resource: its holders and its queue in one statement; granted at
    -- once when nothing is dead and nothing stands in the way.
    IF cardinality(p_resources) = 1 THEN
        SELECT l.mine, l.mine_w, l.others, l.others_w, l.dead + w.dead, w.blocks
          INTO v_mine, v_mine_w, v_others, v_others_w, v_dead, v_blocks
          FROM (SELECT count(*) FILTER (WHERE owner_id = p_owner AND expires_at > v_now) AS mine,
                       coalesce(bool_or(mode = 'write') FILTER (
                           WHERE owner_id = p_owner AND expires_at > v_now), false) AS mine_w,
                       count(*) FILTER (WHERE owner_id <> p_owner AND expires_at > v_now) AS others,
                       coalesce(bool_or(mode = 'write') FILTER (
                           WHERE owner_id <> p_owner AND expires_at > v_now), false) AS others_w,
                       count(*) FILTER (WHERE expires_at <= v_now) AS dead
                  FROM locks WHERE resource = p_resources[1]) l,
               (SELECT count(*) FILTER (WHERE expires_at <= v_now) AS dead,
                       count(*) FILTER (WHERE expires_at > v_now
                                          AND NOT (p_modes[1] = 'read' AND mode = 'read')) AS blocks
                  FROM waiters WHERE resource = p_resources[1]) w;
        IF v_dead = 0 THEN
            IF (v_mine > 0 AND (p_modes[1] = 'read' OR v_mine_w OR v_others = 0))
               OR (v_mine = 0 AND v_blocks = 0
                   AND (v_others = 0 OR (p_modes[1] = 'read' AND NOT v_others_w))) THEN
                o.status := 'granted';
                o.fences := ARRAY[_grant_one(p_req, p_session, p_owner, p_resources[1],
                                             p_modes[1], p_ttl, p_auto, v_now)];
                o.grants := v_grants;
                RETURN o;
            END IF;
            -- Not granted and nothing dead: an upgrade conflict, or a wait.
            v_fit := CASE WHEN v_mine > 0 THEN 'upgrade' ELSE 'wait' END;
        END IF;
    END IF;
    -- The general path: sweep what is dead in the way, then decide item by item.
    IF v_fit = 'wait' THEN
        v_wait := true;
    ELSIF v_fit IS NULL THEN
        v_grants := v_grants || (_sweep(v_now, p_resources)).grants;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_resources, 1), 0) LOOP
        EXIT WHEN v_fit = 'wait';
        IF v_fit IS NULL OR i > 1 THEN
            v_fit := _fit(p_resources[i], p_owner, p_modes[i], v_now);
        END IF;
        v_fit := _fit(p_resources[i], p_owner, p_modes[i], v_now);
        IF v_fit = 'upgrade' THEN
            o.status := 'upgrade';
            o.resource := p_resources[i];
            SELECT count(DISTINCT owner_id) INTO o.others FROM locks
             WHERE resource = p_resources[i] AND owner_id <> p_owner AND expires_at > v_now;
            o.grants := v_grants;
            RETURN o;
        ELSIF v_fit = 'blocked' THEN
            v_wait := true;
        ELSIF v_fit = 'free'
              AND NOT _queue_allows(p_resources[i], 9223372036854775807, p_modes[i], v_now) THEN
            v_wait := true;
        END IF;
        v_fit := NULL;
    END LOOP;
    IF NOT v_wait THEN
        o.status := 'granted';
        o.fences := _grant(p_req, p_session, p_owner, p_resources, p_modes, p_ttl, p_auto,
                           v_now);
        o.grants := v_grants;
        RETURN o;
    END IF;
    IF NOT p_wait THEN
        o := _blocker(p_owner, p_resources, p_modes, NULL, v_now, 'conflict');
        o.grants := v_grants;
        RETURN o;
    END IF;
    -- Contended: would the wait close a cycle? Not if nothing waits for the requester (it
    -- holds nothing, waits for nothing): then a narrow operation may queue it. Otherwise the
    -- search needs every resource: wide. (The graph ignores dead rows.)
    IF NOT _wide() THEN
        IF _may_be_waited_for(p_owner, p_task, v_now) THEN
            o.status := 'wide'; o.grants := v_grants;
            RETURN o;
        END IF;
    ELSE
        v_edges := _deadlock(p_owner, p_task, p_resources, p_modes, v_now);
    END IF;
    IF v_edges IS NOT NULL THEN
        o.status := 'deadlock'; o.resource := p_resources[1]; o.edges := v_edges;
        o.grants := v_grants;
        RETURN o;
    END IF;
    v_arrival := _next();
    FOR i IN 1 .. cardinality(p_resources) LOOP
        UPDATE waiters SET req = p_req, items = p_resources, mode = p_modes[i],
                           arrival = v_arrival, owner_id = p_owner, task_id = p_task,
                           session = p_session, ttl = p_ttl, auto_renew = p_auto,
                           enqueued_at = v_now, expires_at = v_now + p_wait_ttl,
                           freed_at = NULL
         WHERE slot = (SELECT slot FROM waiters
                        WHERE resource = p_resources[i] AND req IS NULL LIMIT 1);
        IF NOT FOUND THEN
            INSERT INTO waiters (resource, req, items, mode, arrival, owner_id, task_id,
                                 session, ttl, auto_renew, enqueued_at, expires_at)
            VALUES (p_resources[i], p_req, p_resources, p_modes[i], v_arrival, p_owner,
                    p_task, p_session, p_ttl, p_auto, v_now, v_now + p_wait_ttl);
        END IF;
    END LOOP;
    RETURN _waiting(p_req, p_resources, v_now, v_grants);
END $$;

-- A waiting request looks at its state (woken by a timer, a poll or a reconnection): dead
-- rows in its way are swept, its resources regranted, and it is granted, waiting or gone.
-- `p_resources` are the request's (rows are found through the resource index).
CREATE FUNCTION check_wait(p_req uuid, p_resources text[], p_now timestamptz)
RETURNS outcome LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_grants text[];
    v_fences bigint[];
    o outcome;
BEGIN
    IF cardinality(p_resources) = 1 THEN
        PERFORM _lock_narrow(p_resources);
    ELSE
        PERFORM _lock_wide();
    END IF;
    v_now := coalesce(p_now, clock_timestamp());
    v_grants := (_sweep(v_now, p_resources)).grants || _regrant_all(p_resources, v_now);
    SELECT array_agg(fence ORDER BY resource COLLATE "C") INTO v_fences
      FROM locks WHERE resource = ANY (p_resources) AND req = p_req AND expires_at > v_now;
    IF v_fences IS NOT NULL THEN
        o.status := 'granted'; o.fences := v_fences; o.grants := v_grants;
        RETURN o;
    END IF;
    IF EXISTS (SELECT 1 FROM waiters WHERE resource = ANY (p_resources) AND req = p_req) THEN
        RETURN _waiting(p_req, p_resources, v_now, v_grants);
    END IF;
    o.status := 'gone'; o.grants := v_grants;
    RETURN o;
END $$;

-- A wait ran out of time: leave the queue and describe the wait (holder, position), unless
-- the grant arrived meanwhile (then it is returned, granted).
CREATE FUNCTION time_out(p_req uuid, p_resources text[], p_now timestamptz)
RETURNS outcome LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_res text[]; v_modes text[]; v_owner text; v_arrival bigint;
    v_fences bigint[];
    o outcome;
BEGIN
    IF cardinality(p_resources) = 1 THEN
        PERFORM _lock_narrow(p_resources);
    ELSE
        PERFORM _lock_wide();
    END IF;
    v_now := coalesce(p_now, clock_timestamp());
    SELECT array_agg(fence ORDER BY resource COLLATE "C") INTO v_fences
      FROM locks WHERE resource = ANY (p_resources) AND req = p_req AND expires_at > v_now;
    IF v_fences IS NOT NULL THEN
        o.status := 'granted'; o.fences := v_fences; o.grants := '{}';
        RETURN o;
    END IF;
    SELECT array_agg(resource ORDER BY resource COLLATE "C"),
           array_agg(mode ORDER BY resource COLLATE "C"), min(owner_id), min(arrival)
      INTO v_res, v_modes, v_owner, v_arrival
      FROM waiters WHERE resource = ANY (p_resources) AND req = p_req;
    IF v_res IS NULL THEN
        o.status := 'gone'; o.grants := '{}';
        RETURN o;
    END IF;
    o := _blocker(v_owner, v_res, v_modes, v_arrival, v_now, 'timeout');
    PERFORM _free_wait(p_req, p_resources, v_now);
    o.grants := _regrant_all(v_res, v_now);
    RETURN o;
END $$;

-- An abandoned wait (dropped or cancelled): leave the queue; a grant made meanwhile is
-- released, which hands it on.
CREATE FUNCTION leave(p_req uuid, p_resources text[], p_now timestamptz)
RETURNS released LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_waits text[]; v_held text[];
BEGIN
    IF cardinality(p_resources) = 1 THEN
        PERFORM _lock_narrow(p_resources);
    ELSE
        PERFORM _lock_wide();
    END IF;
    v_now := coalesce(p_now, clock_timestamp());
    v_waits := _free_wait(p_req, p_resources, v_now);
    WITH d AS (UPDATE locks SET fence = NULL, owner_id = NULL, req = NULL,
                                expires_at = NULL, freed_at = v_now
                WHERE resource = ANY (p_resources) AND req = p_req RETURNING resource)
    SELECT coalesce(array_agg(resource), '{}') INTO v_held FROM d;
    RETURN (cardinality(v_held), _regrant_all(v_waits || v_held, v_now));
END $$;

-- Releases grants by fence (guards dropped; `p_resources` theirs, or NULL when unknown).
-- Returns how many were still held.
CREATE FUNCTION release(p_fences bigint[], p_resources text[], p_now timestamptz)
RETURNS released LANGUAGE plpgsql AS $$
BEGIN
    IF p_resources IS NULL THEN
        PERFORM _lock_wide();
    ELSE
        PERFORM _lock_narrow(p_resources);
    END IF;
    RETURN _release(p_fences, p_resources, coalesce(p_now, clock_timestamp()));
END $$;

-- Releases everything `p_owner` holds (waits are not affected).
CREATE FUNCTION _release_owner(p_owner text, p_now timestamptz)
RETURNS released LANGUAGE plpgsql AS $$
DECLARE
    v_res text[];
BEGIN
    WITH d AS (UPDATE locks SET fence = NULL, owner_id = NULL, req = NULL,
                                expires_at = NULL, freed_at = p_now
                WHERE owner_id = p_owner RETURNING resource)
    SELECT coalesce(array_agg(resource), '{}') INTO v_res FROM d;
    IF cardinality(v_res) = 0 THEN
        RETURN (0, '{}'::text[]);
    END IF;
    RETURN (cardinality(v_res), _regrant_all(v_res, p_now));
END $$;

CREATE FUNCTION release_owner(p_owner text, p_now timestamptz)
RETURNS released LANGUAGE plpgsql AS $$
BEGIN
    PERFORM _lock_wide();
    RETURN _release_owner(p_owner, coalesce(p_now, clock_timestamp()));
END $$;

-- Releases everything a store instance holds or waits for (its orderly shutdown).
CREATE FUNCTION release_session(p_session uuid, p_now timestamptz)
RETURNS released LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_res text[]; v_waits text[];
BEGIN
    PERFORM _lock_wide();
    v_now := coalesce(p_now, clock_timestamp());
    WITH d AS (UPDATE waiters SET req = NULL, owner_id = NULL, task_id = NULL,
                                  expires_at = NULL, arrival = NULL, freed_at = v_now
                WHERE session = p_session AND req IS NOT NULL RETURNING resource)
    SELECT coalesce(array_agg(resource), '{}') INTO v_waits FROM d;
    WITH d AS (UPDATE locks SET fence = NULL, owner_id = NULL, req = NULL,
                                expires_at = NULL, freed_at = v_now
                WHERE session = p_session AND fence IS NOT NULL RETURNING resource)
    SELECT coalesce(array_agg(resource), '{}') INTO v_res FROM d;
    RETURN (cardinality(v_res), _regrant_all(v_res || v_waits, v_now));
END $$;

-- Frees every dead lease and wait everywhere, and deletes slots idle for a minute.
-- Returns how many leases were freed.
CREATE FUNCTION sweep(p_now timestamptz)
RETURNS released LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    r released;
BEGIN
    PERFORM _lock_wide();
    v_now := coalesce(p_now, clock_timestamp());
    r := _sweep(v_now, NULL);
    DELETE FROM locks WHERE fence IS NULL AND freed_at < v_now - interval '1 minute';
    DELETE FROM waiters WHERE req IS NULL AND freed_at < v_now - interval '1 minute';
    RETURN r;
END $$;

-- Extends a live lease to `p_ttl` from now; it stops being renewed automatically. False
-- when the lease is not held (released, or expired: dead rows are never revived).
CREATE FUNCTION renew(p_fence bigint, p_resource text, p_ttl interval, p_now timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
BEGIN
    IF p_resource IS NULL THEN
        UPDATE locks SET expires_at = v_now + p_ttl, ttl = p_ttl, auto_renew = false
         WHERE fence = p_fence AND expires_at > v_now;
    ELSE
        UPDATE locks SET expires_at = v_now + p_ttl, ttl = p_ttl, auto_renew = false
         WHERE resource = p_resource AND fence = p_fence AND expires_at > v_now;
    END IF;
    RETURN FOUND;
END $$;

-- A store instance's heartbeat: renews its auto-renewed leases among `p_fences` (on
-- `p_resources`) and its waits among `p_reqs` (on `p_wait_res`) — only those: the server
-- keeps nothing its holder does not claim. Returns the fences still held and the waits
-- still queued.
CREATE FUNCTION keepalive(p_fences bigint[], p_resources text[], p_reqs uuid[],
                          p_wait_res text[], p_wait_ttl interval, p_now timestamptz,
                          OUT fences bigint[], OUT reqs uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
BEGIN
    UPDATE locks SET expires_at = v_now + ttl
     WHERE resource = ANY (p_resources) AND fence = ANY (p_fences) AND auto_renew
       AND expires_at > v_now;
    SELECT coalesce(array_agg(fence), '{}') INTO fences FROM locks
     WHERE resource = ANY (p_resources) AND fence = ANY (p_fences) AND expires_at > v_now;
    WITH u AS (UPDATE waiters SET expires_at = v_now + p_wait_ttl
                WHERE resource = ANY (p_wait_res) AND req = ANY (p_reqs)
                  AND expires_at > v_now RETURNING req)
    SELECT coalesce(array_agg(DISTINCT req), '{}') INTO reqs FROM u;
END $$;

CREATE FUNCTION stale_count(p_now timestamptz)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM locks WHERE expires_at <= coalesce(p_now, clock_timestamp())
$$;

-- Live holders of a resource: one row per owner, strongest mode, grant count, by age.
CREATE FUNCTION holders(p_resource text, p_now timestamptz)
RETURNS TABLE (owner_id text, mode text, n bigint) LANGUAGE sql STABLE AS $$
    SELECT owner_id, CASE WHEN bool_or(mode = 'write') THEN 'write' ELSE 'read' END,
           count(*)
      FROM locks
     WHERE resource = p_resource AND expires_at > coalesce(p_now, clock_timestamp())
     GROUP BY owner_id ORDER BY min(fence)
$$;

-- ---- the owner registry --------------------------------------------------------------

-- Removes owners silent past their TTL (all, or just `p_owner`), releasing their locks and
-- notifying 'o swept <released> <owner>'.
CREATE FUNCTION _sweep_owners(p_now timestamptz, p_owner text,
                              OUT swept text[], OUT counts int[], OUT grants text[])
LANGUAGE plpgsql AS $$
DECLARE
    o record;
    r released;
BEGIN
    swept := '{}'; counts := '{}'; grants := '{}';
    FOR o IN DELETE FROM owners
              WHERE expires_at <= p_now AND (p_owner IS NULL OR owner_id = p_owner)
             RETURNING owner_id LOOP
        r := _release_owner(o.owner_id, p_now);
        grants := grants || r.grants;
        swept := swept || o.owner_id;
        counts := counts || r.n;
        PERFORM pg_notify(_channel(), 'o swept ' || r.n || ' ' || o.owner_id);
    END LOOP;
END $$;

CREATE FUNCTION sweep_owners(p_now timestamptz,
                             OUT swept text[], OUT counts int[], OUT grants text[])
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM _lock_wide();
    SELECT s.swept, s.counts, s.grants INTO swept, counts, grants
      FROM _sweep_owners(coalesce(p_now, clock_timestamp()), NULL) s;
END $$;

-- Registers an owner; false when a live owner has the name (a dead one is swept first).
CREATE FUNCTION register_owner(p_owner text, p_metadata jsonb, p_ttl interval,
                               p_now timestamptz, OUT ok boolean, OUT grants text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
BEGIN
    PERFORM _lock_wide();
    v_now := coalesce(p_now, clock_timestamp());
    grants := (_sweep_owners(v_now, p_owner)).grants;
    INSERT INTO owners (owner_id, metadata, ttl, registered_at, last_heartbeat, expires_at)
    VALUES (p_owner, p_metadata, p_ttl, v_now, v_now, v_now + p_ttl)
    ON CONFLICT (owner_id) DO NOTHING;
    ok := FOUND;
    IF ok THEN
        PERFORM pg_notify(_channel(), 'o registered 0 ' || p_owner);
    END IF;
END $$;

-- A heartbeat; false when the owner is not registered (a dead one is swept, never revived).
CREATE FUNCTION heartbeat_owner(p_owner text, p_now timestamptz,
                                OUT ok boolean, OUT grants text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
BEGIN
    UPDATE owners SET last_heartbeat = v_now, expires_at = v_now + ttl
     WHERE owner_id = p_owner AND expires_at > v_now;
    ok := FOUND;
    grants := '{}';
    IF NOT ok THEN
        PERFORM _lock_wide();
        grants := (_sweep_owners(v_now, p_owner)).grants;
    END IF;
END $$;

-- Deregisters an owner and releases its locks; n = -1 when it was not registered.
CREATE FUNCTION deregister_owner(p_owner text, p_now timestamptz)
RETURNS released LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz;
    v_rel released;
    r released;
BEGIN
    PERFORM _lock_wide();
    v_now := coalesce(p_now, clock_timestamp());
    r.grants := (_sweep_owners(v_now, p_owner)).grants;
    DELETE FROM owners WHERE owner_id = p_owner;
    IF NOT FOUND THEN
        r.n := -1;
        RETURN r;
    END IF;
    v_rel := _release_owner(p_owner, v_now);
    r.n := v_rel.n;
    r.grants := r.grants || v_rel.grants;
    PERFORM pg_notify(_channel(), 'o deregistered ' || r.n || ' ' || p_owner);
    RETURN r;
END $$;

-- Live owners with their heartbeat age and held locks.
CREATE FUNCTION list_owners(p_now timestamptz)
RETURNS TABLE (owner_id text, metadata jsonb, ttl_us bigint, since_us bigint,
               last_heartbeat timestamptz, held jsonb)
LANGUAGE sql STABLE AS $$
    SELECT o.owner_id, o.metadata,
           (extract(epoch FROM o.ttl) * 1000000)::bigint,
           (extract(epoch FROM (coalesce(p_now, clock_timestamp()) - o.last_heartbeat))
               * 1000000)::bigint,
           o.last_heartbeat,
           coalesce((SELECT jsonb_agg(jsonb_build_object('resource', h.resource,
                                                         'mode', h.mode, 'count', h.n)
                                      ORDER BY h.resource COLLATE "C")
                       FROM (SELECT resource,
                                    CASE WHEN bool_or(mode = 'write') THEN 'write'
                                         ELSE 'read' END AS mode,
                                    count(*) AS n
                               FROM locks
                              WHERE owner_id = o.owner_id
                                AND expires_at > coalesce(p_now, clock_timestamp())
                              GROUP BY resource) h), '[]')
      FROM owners o
     WHERE o.expires_at > coalesce(p_now, clock_timestamp())
     ORDER BY o.owner_id COLLATE "C"
$$;
