"""confsync"""
