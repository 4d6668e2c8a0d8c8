"""Student web pages under `/app`: server-rendered shells, data from the JSON API in the browser."""
