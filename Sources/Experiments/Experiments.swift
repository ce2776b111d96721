// Experiments: the arithmetic of A/B tests, with no dependency on the rest of Switchyard.
// Distinct-unit sketches that merge across instances (HyperLogLog), the keyed hash that turns a
// sticky key into a unit id (SipHash), and the statistics an experimenter reads: the sample-ratio
// check (chi-square goodness of fit), conversion intervals, the fixed-horizon two-proportion
// z-test and an always-valid sequential test (mSPRT).
