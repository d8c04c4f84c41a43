"""Build tools of the book: the exporter (`tools.nbexport`) and the executor (`tools.nbexec`)."""
