"""Rate limits per key: requests and tokens per minute, in memory or shared through Redis."""
