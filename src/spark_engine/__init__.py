"""The Spark engine: the data stages and ALS as Spark jobs, chosen by ``engine.name`` / ``als.engine``.

It imports ``src.recsys`` (columns, validation, config, the small driver-side assembly) and is never
imported by it. Only ``spark_settings`` is importable without pyspark; the stages import the job modules
only when the params select Spark, so a user who stays local installs nothing new.
"""
