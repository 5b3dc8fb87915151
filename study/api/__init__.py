"""The REST API (DRF): serializers.py, views.py (one APIView per operation), urls.py (mounted at /api/)."""
