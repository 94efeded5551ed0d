-- A citizen's profile (dong, 동네 인증 time, adult_from, child-safety flag) is cleared once
-- the citizen has had no activity for CITIZEN_PROFILE_RETENTION_DAYS
-- (`sweepers.clear_idle_profiles`, PIPA art. 21); the pseudonymous row stays for the
-- standing (strikes, suspensions) and the bookings that name it. The next application
-- brings a fresh profile.
ALTER TABLE citizens
    ALTER COLUMN dong DROP NOT NULL,
    ALTER COLUMN neighbourhood_verified_at DROP NOT NULL,
    ALTER COLUMN adult_from DROP NOT NULL,
    ALTER COLUMN child_safety_check DROP NOT NULL,
    ALTER COLUMN profile_received_at DROP NOT NULL,
    ADD COLUMN profile_cleared_at timestamptz,
    ADD CONSTRAINT citizens_profile_whole CHECK (
        (dong IS NULL) = (profile_received_at IS NULL)
        AND (neighbourhood_verified_at IS NULL) = (profile_received_at IS NULL)
        AND (adult_from IS NULL) = (profile_received_at IS NULL)
        AND (child_safety_check IS NULL) = (profile_received_at IS NULL));
CREATE INDEX citizens_profile_received ON citizens (profile_received_at)
    WHERE profile_received_at IS NOT NULL;
