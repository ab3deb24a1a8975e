"""What makes the results, not what serves them: grid runners, benches, data builders, the fingerprint."""
