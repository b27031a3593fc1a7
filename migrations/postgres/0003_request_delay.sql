-- The request delay of emailed OTPs, per user (SPEC section 4: the gap between two sends
-- to one user is at least OTP Request Delay Seconds, whatever happened in between).
-- It used to be read from the newest emailed_otps row, but those rows go with their sign-in
-- transaction (ON DELETE CASCADE) when it finishes or expires, so a completed sign-in
-- forgot the delay. This row outlives codes and transactions; only the user's deletion
-- removes it.
CREATE TABLE emailed_otp_last_send (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sent_at BIGINT NOT NULL             -- when the newest code was created (Unix ms)
);

-- Codes still in the database keep their delay across the upgrade.
INSERT INTO emailed_otp_last_send (user_id, sent_at)
    SELECT user_id, MAX(created_at) FROM emailed_otps GROUP BY user_id;
