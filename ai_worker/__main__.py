from ai_worker.app import build

build().run()
