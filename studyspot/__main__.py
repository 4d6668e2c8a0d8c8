from studyspot.cli import app

app()
