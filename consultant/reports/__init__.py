"""Reports on how the desk is doing: volume, speed, people, quota and codes.

``rollups`` keeps figures per day and group of cases, refreshed by the beat;
``figures`` reads them into the reports the page, ``consultant report`` and the API
show; ``query`` reads what a person asked for.
"""
