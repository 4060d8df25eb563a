"""Static files of the website widget: the script, its styles and the demo page (package data)."""
