"""After training: the merged model or adapter and the manifest (`outputs`), GGUF files by
llama.cpp's own tools (`gguf`), and the tool-call evaluation of what was exported (`evaluate`)."""
