-- keyline-signer schema v3: rate caps are counted over the audit log (spec §12.2: caps survive
-- restarts), per client, method and time.

CREATE INDEX audit_log_by_client ON audit_log (client_pubkey, method, ts);
