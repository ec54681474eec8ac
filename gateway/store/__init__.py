"""Redis: the keyspace, survey states, events, streams and the one Lua function library."""
