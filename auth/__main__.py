from auth.app import build

build().run()
