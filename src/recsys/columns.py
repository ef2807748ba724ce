"""Column names that cross files: the event and recommendation tables every stage writes and the next one reads.

A name used only inside the one function that builds a frame stays a plain string there; a name that one
stage writes and another reads is spelt here once.
"""
USER = "user_id"
TRACK = "track_id"
TRACK_SEQ = "track_seq"  # the user's own listen counter: orders listens within a day
STARTED_AT = "started_at"  # day of the listen (datetime64[ns])
SIMILAR_TRACK = "similar_track_id"
NEXT_TRACK = "next_track_id"  # played-next table: a track users played after track_id the same day
SCORE = "score"
RANK = "rank"  # 1 = best

EVENT_COLUMNS = [USER, TRACK, TRACK_SEQ, STARTED_AT]
PAIR_COLUMNS = [USER, TRACK]
RANKED_COLUMNS = [USER, TRACK, RANK]  # what evaluation reads of a recommendation table
