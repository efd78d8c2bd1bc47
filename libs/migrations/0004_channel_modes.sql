-- presence: ban masks and pending invites.
CREATE TABLE presence.bans (
    channel text NOT NULL REFERENCES presence.channels (name_folded) ON DELETE CASCADE,
    mask    text NOT NULL,  -- folded nick!user@host with * and ? wildcards
    set_by  text NOT NULL,
    set_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, mask)
);

CREATE TABLE presence.invites (
    channel    text NOT NULL REFERENCES presence.channels (name_folded) ON DELETE CASCADE,
    session_id uuid NOT NULL,
    invited_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, session_id)
);

-- identity: when a session last spoke (WHOIS idle time).
ALTER TABLE identity.sessions ADD COLUMN last_spoke timestamptz NOT NULL DEFAULT now();
